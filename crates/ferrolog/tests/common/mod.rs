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
    pub fn start(overrides: &[&str]) -> Server {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        let mut s = Server {
            child: None,
            port: free_port(),
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
        if std::env::var("FERROLOG_TEST_LOG").is_ok() {
            cmd.stderr(Stdio::inherit());
        }
        cmd
    }

    pub fn spawn(&mut self) {
        let child = Self::command(&self.dir, self.port, &self.overrides)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited early: {status}");
            }
            assert!(Instant::now() < deadline, "server did not start");
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
