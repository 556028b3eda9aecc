use super::*;

#[test]
fn the_default_is_valid_and_matches_the_svr2_limits() {
    let config = HostConfig::default();
    config.validate().unwrap();
    // SVR2 client protocol: frame limit 128 KiB; idle timeout 30 s; 120-day tokens;
    // burst 10, 10 per minute.
    assert_eq!(config.frame_bytes_max, 131_072);
    assert_eq!(config.idle_timeout, Duration::from_secs(30));
    assert_eq!(config.token_age_max_secs, 120 * 86_400);
    assert_eq!(
        (config.rate_limit_burst, config.rate_limit_per_minute),
        (10, 10)
    );
}

#[test]
fn every_number_is_bounded() {
    type Edit = fn(&mut HostConfig);
    let cases: &[(&str, Edit)] = &[
        ("token_age_max_secs", |c| c.token_age_max_secs = 0),
        ("token_age_max_secs", |c| c.token_age_max_secs = u64::MAX),
        ("rate_limit_burst", |c| c.rate_limit_burst = 0),
        ("rate_limit_per_minute", |c| c.rate_limit_per_minute = 0),
        ("rate_limit_users_max", |c| c.rate_limit_users_max = 0),
        ("frame_bytes_max", |c| c.frame_bytes_max = 10),
        ("frame_bytes_max", |c| c.frame_bytes_max = usize::MAX),
        ("frame_bytes_max", |c| {
            c.frame_bytes_max = cloister_enclave::UNTRUSTED_MESSAGE_BYTES_MAX
        }),
        ("idle_timeout", |c| c.idle_timeout = Duration::ZERO),
        ("tick_interval", |c| {
            c.tick_interval = Duration::from_secs(3600)
        }),
        ("connections_max", |c| c.connections_max = 0),
        ("client_sessions_max", |c| c.client_sessions_max = 0),
        ("enclave_pending_requests_max", |c| {
            c.enclave_pending_requests_max = 0
        }),
        ("enclave_queue_messages_max", |c| {
            c.enclave_queue_messages_max = 0
        }),
        ("enclave_batch_messages_max", |c| {
            c.enclave_batch_messages_max = 0
        }),
        ("pending_calls_max", |c| c.pending_calls_max = 0),
        ("enclave_call_timeout", |c| {
            c.enclave_call_timeout = Duration::ZERO
        }),
        ("shutdown_grace", |c| {
            c.shutdown_grace = Duration::from_secs(86_400)
        }),
        ("admin_body_bytes_max", |c| c.admin_body_bytes_max = 0),
    ];
    for (field, edit) in cases {
        let mut config = HostConfig::default();
        edit(&mut config);
        match config.validate() {
            Err(ConfigError::OutOfRange { field: named, .. }) => assert_eq!(named, *field),
            other => panic!("{field}: expected OutOfRange, got {other:?}"),
        }
    }
}

#[test]
fn contradictions_are_refused() {
    type Edit = fn(&mut HostConfig);
    let cases: &[Edit] = &[
        |c| c.enclave_log_level = EnclaveLogLevel::Unset,
        |c| c.connections_max = c.client_sessions_max as usize + 1,
        |c| c.pending_calls_max = c.connections_max,
        |c| c.enclave_batch_messages_max = c.enclave_queue_messages_max + 1,
        |c| c.admin_listen_addr = SocketAddr::from(([0, 0, 0, 0], 9000)),
        |c| c.admin_listen_addr = c.client_listen_addr,
    ];
    for edit in cases {
        let mut config = HostConfig::default();
        edit(&mut config);
        assert!(
            matches!(config.validate(), Err(ConfigError::Inconsistent(_))),
            "{config:?}"
        );
    }
}

#[test]
fn explicit_opt_ins_and_ephemeral_ports_are_allowed() {
    let mut config = HostConfig {
        admin_listen_addr: SocketAddr::from(([0, 0, 0, 0], 9000)),
        insecure_admin_allow_non_loopback: true,
        ..HostConfig::default()
    };
    config.validate().unwrap();
    config.client_listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.admin_listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.validate().unwrap();
}

#[test]
fn peer_settings_are_checked() {
    let seed = SocketAddr::from(([10, 0, 0, 2], 7000));
    let listening = HostConfig {
        peer_listen_addr: Some(SocketAddr::from(([0, 0, 0, 0], 7000))),
        peers: vec![seed],
        ..HostConfig::default()
    };
    listening.validate().unwrap();
    type Edit = fn(&mut HostConfig);
    let contradictions: &[Edit] = &[
        |c| c.peer_listen_addr = None,
        |c| c.peer_listen_addr = Some(c.client_listen_addr),
        |c| c.peer_listen_addr = Some(c.admin_listen_addr),
        |c| c.peers.push(SocketAddr::from(([0, 0, 0, 0], 7000))),
        |c| c.peers.push(SocketAddr::from(([10, 0, 0, 3], 0))),
        |c| c.peers.push(c.peers[0]),
        |c| c.peer_settings.backoff_initial = Duration::from_secs(60),
    ];
    for edit in contradictions {
        let mut config = listening.clone();
        edit(&mut config);
        assert!(
            matches!(config.validate(), Err(ConfigError::Inconsistent(_))),
            "{config:?}"
        );
    }
    let mut crowded = listening;
    crowded.peers = (1..=SEED_PEERS_MAX as u16 + 1)
        .map(|port| SocketAddr::from(([10, 0, 0, 2], port)))
        .collect();
    assert!(matches!(
        crowded.validate(),
        Err(ConfigError::OutOfRange { field: "peers", .. })
    ));
    let mut zero_buffer = HostConfig::default();
    zero_buffer.peer_settings.send_buffer_frames_max = 0;
    assert!(matches!(
        zero_buffer.validate(),
        Err(ConfigError::OutOfRange {
            field: "send_buffer_frames_max",
            ..
        })
    ));
}

#[test]
fn errors_name_the_field_and_the_bounds() {
    let config = HostConfig {
        idle_timeout: Duration::ZERO,
        ..HostConfig::default()
    };
    let message = config.validate().unwrap_err().to_string();
    assert_eq!(
        message,
        "idle_timeout = 0 ms is out of range 100 ms..=3600000 ms"
    );
}

#[test]
fn the_enclave_config_carries_the_bounds() {
    let config = HostConfig::default();
    let init = config.init_config(42);
    assert_eq!(init.initial_timestamp_unix_secs, 42);
    let enclave = init.config.unwrap();
    assert_eq!(enclave.client_sessions_max, config.client_sessions_max);
    assert_eq!(enclave.log_level, EnclaveLogLevel::Info as i32);
}
