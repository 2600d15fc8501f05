//! Starts the real `ferrolog` binary on a free port in a temp dir.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    overrides: Vec<String>,
    _temp: Option<tempfile::TempDir>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts a server on a port the OS picks (listeners=...:0), so parallel tests never collide.
    pub fn start(overrides: &[&str]) -> Server {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        let mut s = Server {
            child: None,
            port: 0,
            dir,
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            _temp: Some(temp),
        };
        s.spawn();
        s
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn command(dir: &Path, port: u16, overrides: &[String]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrolog"));
        cmd.arg("server")
            .arg("--data-dir")
            .arg(dir)
            .arg("--override")
            .arg(format!(
                "listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:0"
            ));
        for o in overrides {
            cmd.arg("--override").arg(o);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    }

    /// Starts the process (on the port of the first start, when restarting) and waits for the
    /// line saying where it serves.
    pub fn spawn(&mut self) {
        let mut child = Self::command(&self.dir, self.port, &self.overrides)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let echo = std::env::var("FERROLOG_TEST_LOG").is_ok();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if echo {
                    eprintln!("{line}");
                }
                if let Some(rest) = line.split("serving Kafka clients on ").nth(1) {
                    let port = rest
                        .split_whitespace()
                        .next()
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| p.parse::<u16>().ok());
                    if let (Some(port), Some(tx)) = (port, tx.take()) {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => self.port = port,
            Err(_) => {
                let status = self.child.as_mut().unwrap().try_wait().unwrap();
                panic!("server did not start (exit status {status:?})");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(
                Instant::now() < deadline,
                "server did not accept connections"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, no clean shutdown.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (clean shutdown).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A current-thread runtime for a test's async part.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// CreateTopics for one topic (replication factor 1); returns its error code.
pub async fn create_topic(
    c: &mut ferrolog_client::Connection,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> i16 {
    use ferrolog_client::kafka_protocol::messages::{create_topics_request, CreateTopicsRequest};
    use ferrolog_client::{str, topic_name};
    let t = create_topics_request::CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    create_topics_request::CreatableTopicConfig::default()
                        .with_name(str(k))
                        .with_value(Some(str(v)))
                })
                .collect(),
        );
    let r = c
        .send(
            &CreateTopicsRequest::default()
                .with_topics(vec![t])
                .with_timeout_ms(10_000),
        )
        .await
        .unwrap();
    r.topics[0].error_code
}
