//! `cloister sim` from the command line: one seed prints its summary (and the same seed the
//! same trace hash), a range prints a line per seed, and bad arguments exit 2 before any run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestDir, bounded, cli};

#[tokio::test]
async fn one_seed_reports_its_checks_and_replays_exactly() {
    bounded(async {
        let args = ["sim", "--seed", "5", "--steps", "3000", "--json"];
        let first = cli(&args).await.expect_code(0);
        let json: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
        assert_eq!(json["status"], "ok", "{json}");
        assert_eq!(json["seed"], 5);
        assert!(json["operations"].as_u64().unwrap() > 0, "{json}");
        assert!(
            json["checks"].as_str().unwrap().contains("0 violation(s)"),
            "{json}"
        );
        let second = cli(&args).await.expect_code(0);
        let again: serde_json::Value = serde_json::from_str(&second.stdout).unwrap();
        assert_eq!(json["trace_hash"], again["trace_hash"]);

        let text = cli(&["sim", "--seed", "5", "--steps", "3000"])
            .await
            .expect_code(0);
        assert!(text.stdout.starts_with("seed 5 ok: 3 replicas"), "{text:?}");
    })
    .await;
}

#[tokio::test]
async fn a_range_runs_every_seed() {
    bounded(async {
        let dir = TestDir::new("sim-range");
        let trace_dir = dir.path().display().to_string();
        let out = cli(&[
            "sim",
            "--seeds",
            "10..12",
            "--steps",
            "2000",
            "--trace-dir",
            &trace_dir,
        ])
        .await
        .expect_code(0);
        assert!(
            out.stdout.contains("seed 10 ok") && out.stdout.contains("seed 11 ok"),
            "{out:?}"
        );
        assert!(out.stdout.contains("2 seeds passed, 0 failed"), "{out:?}");
    })
    .await;
}

#[tokio::test]
async fn bad_arguments_exit_2_before_any_run() {
    bounded(async {
        for (args, mentions) in [
            (&["sim"][..], "--seed S, --seeds A..B or --soak MINUTES"),
            (&["sim", "--seed", "1", "--replicas", "9"], "replicas is 9"),
            (&["sim", "--seed", "1", "--replicas", "2"], "replicas is 2"),
            (&["sim", "--seed", "1", "--steps", "0"], "steps is 0"),
            (&["sim", "--seed", "1", "--clients", "0"], "clients is 0"),
            (&["sim", "--seeds", "5..5"], "the range is empty"),
            (&["sim", "--seeds", "9..3"], "the range is empty"),
            (&["sim", "--seeds", "x..3"], "is not a seed"),
            (&["sim", "--seeds", "7"], "not a range"),
            (&["sim", "--soak", "0"], "--soak is 0"),
            (
                &["sim", "--seed", "1", "--seeds", "1..2"],
                "cannot be used with",
            ),
            (&["sim", "--seed", "-4"], "unexpected argument"),
        ] {
            let out = cli(args).await.expect_code(2);
            assert!(out.stderr.contains(mentions), "{args:?}: {out:?}");
        }
    })
    .await;
}
