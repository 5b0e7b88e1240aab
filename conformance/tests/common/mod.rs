//! A simulator-mode server in this process, on a random loopback port and a fresh data
//! directory, for the suite to run against.

#![allow(dead_code)]

use std::path::PathBuf;

use boxoffice::sim::{SimOptions, SimServer};

pub struct TestServer {
    pub server: SimServer,
    pub data_dir: PathBuf,
}

impl TestServer {
    pub async fn start() -> Self {
        let data_dir = std::env::temp_dir().join(format!(
            "boxoffice-conformance-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let server = SimServer::start(SimOptions {
            addr: "127.0.0.1:0".into(),
            data_dir: data_dir.clone(),
            ..SimOptions::default()
        })
        .await
        .expect("simulator mode starts");
        TestServer { server, data_dir }
    }

    pub fn base_url(&self) -> &str {
        &self.server.base_url
    }

    /// A scratch file path in this server's data directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.data_dir.join(name)
    }

    pub async fn stop(self) {
        self.server.stop().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
