use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

#[test]
fn a_put_request_is_one_post_with_a_base64_json_body() {
    let body = put_body(b"k1", &[0xff; 3]);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["key"], "azE=");
    assert_eq!(json["value"], "////");
    let request = String::from_utf8(format_request("127.0.0.1:2379", PUT_PATH, &body)).unwrap();
    let (head, sent) = request.split_once("\r\n\r\n").unwrap();
    assert_eq!(sent, body);
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("POST /v3/kv/put HTTP/1.1"));
    let headers: Vec<&str> = lines.collect();
    assert!(headers.contains(&"Host: 127.0.0.1:2379"));
    assert!(headers.contains(&"Content-Type: application/json"));
    assert!(headers.contains(&format!("Content-Length: {}", body.len()).as_str()));
    // HTTP/1.1 keeps the connection open unless someone says otherwise.
    assert!(!head.to_ascii_lowercase().contains("connection:"));
}

#[test]
fn endpoints_must_be_plain_http_with_a_port() {
    assert_eq!(
        authority("http://127.0.0.1:2379").unwrap(),
        "127.0.0.1:2379"
    );
    assert_eq!(
        authority("http://localhost:2379/").unwrap(),
        "localhost:2379"
    );
    for bad in [
        "https://127.0.0.1:2379",
        "127.0.0.1:2379",
        "http://127.0.0.1",
        "http://:2379",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:2379/v3",
    ] {
        assert!(authority(bad).is_err(), "{bad}");
    }
}

async fn parse(bytes: &[u8]) -> anyhow::Result<(HttpResponse, Vec<u8>)> {
    let mut reader = bytes;
    let mut buffer = Vec::new();
    let response = read_response(&mut reader, &mut buffer).await?;
    Ok((response, buffer))
}

#[tokio::test]
async fn content_length_bodies_are_read_exactly() {
    let (response, rest) =
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloHTTP/1.1")
            .await
            .unwrap();
    assert_eq!(
        response,
        HttpResponse {
            status: 200,
            body: b"hello".to_vec(),
            close: false
        }
    );
    assert_eq!(rest, b"HTTP/1.1");
}

#[tokio::test]
async fn chunked_bodies_are_reassembled() {
    let (response, rest) = parse(
        b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: Chunked\r\nConnection: close\r\n\r\n\
          3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(
        (response.status, response.body.as_slice(), response.close),
        (503, &b"abcde"[..], true)
    );
    assert!(rest.is_empty());
}

#[tokio::test]
async fn malformed_or_truncated_responses_are_errors() {
    for bad in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"[..],
        b"HTTP/1.1 200 OK\r\n\r\nno length",
        b"SSH-2.0 hello\r\n\r\n",
        b"HTTP/1.1 2xx OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2",
    ] {
        assert!(
            parse(bad).await.is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let huge = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        RESPONSE_BODY_BYTES_MAX + 1
    );
    assert!(parse(huge.as_bytes()).await.is_err());
}

/// Read one request (head and Content-Length body) off a server-side socket.
async fn read_request(socket: &mut tokio::net::TcpStream, pending: &mut Vec<u8>) -> String {
    loop {
        if let Some(head_end) = find(pending, b"\r\n\r\n", 0) {
            let head = String::from_utf8(pending[..head_end].to_vec()).unwrap();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            if pending.len() >= head_end + 4 + length {
                let request: Vec<u8> = pending.drain(..head_end + 4 + length).collect();
                return String::from_utf8(request).unwrap();
            }
        }
        let mut chunk = [0u8; 1024];
        let read = socket.read(&mut chunk).await.unwrap();
        assert!(read > 0, "client closed early");
        pending.extend_from_slice(&chunk[..read]);
    }
}

#[tokio::test]
async fn one_connection_carries_several_puts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut pending = Vec::new();
        let mut seen = Vec::new();
        let answers: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"header\":{}}",
            // Split across writes, chunked: the client must keep reading.
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n",
            b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow",
        ];
        for answer in answers {
            seen.push(read_request(&mut socket, &mut pending).await);
            socket.write_all(answer).await.unwrap();
            if answer.starts_with(b"HTTP/1.1 200 OK\r\nTransfer") {
                tokio::time::sleep(Duration::from_millis(20)).await;
                socket.write_all(b"0\r\n\r\n").await.unwrap();
            }
        }
        seen
    });
    let mut connection = HttpConnection::connect(&address).await.unwrap();
    let body = put_body(b"bench-7", &DATA);
    let first = connection.post(PUT_PATH, &body).await.unwrap();
    assert_eq!((first.status, first.close), (200, false));
    assert_eq!(first.body, b"{\"header\":{}}");
    let second = connection.post(PUT_PATH, &body).await.unwrap();
    assert_eq!((second.status, second.body.as_slice()), (200, &b"{}"[..]));
    let third = connection.post(PUT_PATH, &body).await.unwrap();
    assert_eq!((third.status, third.close), (429, true));
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 3);
    for request in seen {
        assert_eq!(
            request.into_bytes(),
            format_request(&address, PUT_PATH, &body)
        );
    }
}

#[tokio::test]
async fn the_probe_reports_a_refusing_endpoint() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(&mut socket, &mut Vec::new()).await;
        socket
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
            .await
            .unwrap();
    });
    let Err(failure) = run(&[url], 1, Duration::from_secs(1)).await else {
        panic!("a 404 probe must fail the run");
    };
    assert!(format!("{failure:?}").contains("404"), "{failure:?}");
}
