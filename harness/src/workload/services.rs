//! Host-side peers of a workload, started before its guest and stopped
//! after: an iperf3 server and the verified-stream checker, both on the
//! host's loopback, which QEMU user networking shows the guest as 10.0.2.2.

use super::stream::{self, Verdict, Verdicts};
use crate::failure::{Classify, Failure, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Iperf3,
    Stream,
}

/// What the services saw, for judging.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub stream: Vec<Verdict>,
}

pub struct Running {
    iperf3: Option<tokio::process::Child>,
    stream: Option<(tokio::task::JoinHandle<()>, Verdicts)>,
    /// `bounce.KEY=VALUE` words telling the guest where the services are.
    pub cmdline: Vec<String>,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").infra(|| "cannot bind a loopback port".into())?;
    Ok(l.local_addr().infra(|| "no local address".into())?.port())
}

pub async fn start(services: &[Service], dir: &Path) -> Result<Running> {
    let mut r = Running { iperf3: None, stream: None, cmdline: Vec::new() };
    for s in services {
        match s {
            Service::Iperf3 => {
                let port = free_port()?;
                let log = std::fs::File::create(dir.join("iperf3-server.log"))
                    .infra(|| format!("cannot create {}", dir.display()))?;
                let mut cmd = tokio::process::Command::new("iperf3");
                crate::host::cmd::dies_with_harness(&mut cmd);
                let child = cmd
                    .args(["-s", "-B", "127.0.0.1", "-p", &port.to_string()])
                    .stdout(log.try_clone().infra(|| "log".into())?)
                    .stderr(log)
                    .spawn()
                    .map_err(|e| {
                        Failure::infra(format!(
                            "cannot start the iperf3 server: {e} (is iperf3 installed? `bounce doctor`)"
                        ))
                    })?;
                r.iperf3 = Some(child);
                r.cmdline.push(format!("bounce.iperf_port={port}"));
            }
            Service::Stream => {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .infra(|| "cannot bind the stream checker".into())?;
                let port = l.local_addr().infra(|| "no local address".into())?.port();
                let v: Verdicts = Default::default();
                r.stream = Some((tokio::spawn(stream::serve(l, v.clone())), v));
                r.cmdline.push(format!("bounce.stream_port={port}"));
            }
        }
    }
    // Give the iperf3 server its moment to listen before a guest can ask.
    if r.iperf3.is_some() {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    Ok(r)
}

impl Running {
    pub async fn stop(mut self) -> Report {
        if let Some(mut c) = self.iperf3.take() {
            let _ = c.kill().await;
        }
        let mut report = Report::default();
        if let Some((task, v)) = self.stream.take() {
            task.abort();
            report.stream = v.lock().unwrap().clone();
        }
        report
    }
}
