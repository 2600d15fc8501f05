//! The operator CLI against a running server: topics, produce and consume, as an operator types them.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::Server;

fn ferrolog(args: &[&str], input: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrolog"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(text) = input {
        stdin.write_all(text.as_bytes()).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn topics_produce_consume_like_the_kafka_scripts() {
    let server = Server::start(&[]);
    let bs = server.addr();
    let b = bs.as_str();
    let (ok, out, err) = ferrolog(
        &[
            "topics",
            "--bootstrap-server",
            b,
            "create",
            "--topic",
            "cli",
            "--partitions",
            "2",
            "--config",
            "flush.messages=1",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Created topic cli.");
    let (ok, _, err) = ferrolog(
        &[
            "topics",
            "--bootstrap-server",
            b,
            "create",
            "--topic",
            "cli",
        ],
        None,
    );
    assert!(!ok && err.contains("TopicAlreadyExists"), "{err}");
    let (ok, _, _) = ferrolog(
        &[
            "topics",
            "--bootstrap-server",
            b,
            "create",
            "--topic",
            "cli",
            "--if-not-exists",
        ],
        None,
    );
    assert!(ok);
    let (ok, out, _) = ferrolog(&["topics", "--bootstrap-server", b, "list"], None);
    assert!(ok && out.lines().any(|l| l == "cli"), "{out}");
    let (ok, out, err) = ferrolog(
        &[
            "topics",
            "--bootstrap-server",
            b,
            "describe",
            "--topic",
            "cli",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("PartitionCount: 2") && out.contains("Configs: flush.messages=1"),
        "{out}"
    );
    assert!(
        out.contains("Partition: 1\tLeader: 1\tReplicas: 1\tIsr: 1"),
        "{out}"
    );

    // keys, headers and an explicit partition
    let input = "h1:a,h2:b\tk1:v1\nh1:c\tk2:v2\n";
    let (ok, _, err) = ferrolog(
        &[
            "produce",
            "--bootstrap-server",
            b,
            "--topic",
            "cli",
            "--partition",
            "1",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
            "--property",
            "parse.headers=true",
            "--compression-codec",
            "zstd",
        ],
        Some(input),
    );
    assert!(ok, "{err}");
    let (ok, out, err) = ferrolog(
        &[
            "consume",
            "--bootstrap-server",
            b,
            "--topic",
            "cli",
            "--from-beginning",
            "--max-messages",
            "2",
            "--timeout-ms",
            "10000",
            "--property",
            "print.key=true",
            "--property",
            "print.offset=true",
            "--property",
            "print.partition=true",
            "--property",
            "print.headers=true",
            "--property",
            "key.separator=|",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Partition:1|Offset:0|h1:a,h2:b|k1|v1\nPartition:1|Offset:1|h1:c|k2|v2\n"
    );
    assert!(err.contains("Processed a total of 2 messages"), "{err}");
    // --offset on one partition
    let (ok, out, _) = ferrolog(
        &[
            "consume",
            "--bootstrap-server",
            b,
            "--topic",
            "cli",
            "--partition",
            "1",
            "--offset",
            "1",
            "--max-messages",
            "1",
            "--timeout-ms",
            "5000",
        ],
        None,
    );
    assert!(ok);
    assert_eq!(out, "v2\n");
    // timestamps are printed with their type
    let (_, out, _) = ferrolog(
        &[
            "consume",
            "--bootstrap-server",
            b,
            "--topic",
            "cli",
            "--partition",
            "1",
            "--offset",
            "0",
            "--max-messages",
            "1",
            "--property",
            "print.timestamp=true",
        ],
        None,
    );
    assert!(out.starts_with("CreateTime:"), "{out}");
    // a bad line is an error, not a silent drop
    let (ok, _, err) = ferrolog(
        &[
            "produce",
            "--bootstrap-server",
            b,
            "--topic",
            "cli",
            "--property",
            "parse.key=true",
        ],
        Some("no separator\n"),
    );
    assert!(!ok && err.contains("no key separator"), "{err}");

    let (ok, out, _) = ferrolog(
        &[
            "topics",
            "--bootstrap-server",
            b,
            "delete",
            "--topic",
            "cli",
        ],
        None,
    );
    assert!(ok && out.contains("Deleted topic cli."));
    let (ok, _, err) = ferrolog(
        &[
            "topics",
            "--bootstrap-server",
            b,
            "describe",
            "--topic",
            "cli",
        ],
        None,
    );
    assert!(!ok && err.contains("UnknownTopicOrPartition"), "{err}");
}
