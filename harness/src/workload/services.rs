//! Host-side peers of a workload, started before its guest and stopped
//! after: an iperf3 server and the verified-stream checker, both on the
//! host's loopback. The guest reaches them at [`PEER_ADDR`] and reaches
//! nothing else: QEMU relays each connection through `bounce relay`.

use super::stream::{self, Verdict, Verdicts};
use crate::failure::{Classify, Failure, Result};
use crate::guest::qemu::{Forward, PEER_ADDR};
use serde::{Deserialize, Serialize};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

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

/// What a guest is told and given to reach the services.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    /// `bounce.KEY=VALUE` words telling the guest where the services are.
    pub cmdline: Vec<String>,
    pub forwards: Vec<Forward>,
}

impl Peers {
    fn add(&mut self, key: &str, port: u16) -> Result<()> {
        // This process's own binary through /proc: a rebuild that replaces
        // the file during a run (cargo does, under `cargo run -- matrix`)
        // left every later relay pointing at `bounce (deleted)`, and every
        // network cell of that run failed with iperf3's "control socket
        // has closed unexpectedly" (measured).
        let own = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
        let exe = if own.exists() {
            own
        } else {
            std::env::current_exe().infra(|| "cannot find the harness's own binary (for `bounce relay`)".into())?
        };
        let exe = exe.to_str().ok_or_else(|| Failure::infra(format!("{}: not UTF-8", exe.display())))?;
        let exe = shlex::try_quote(exe).infra(|| format!("cannot quote {exe}"))?;
        self.forwards.push(Forward { port, relay: format!("{exe} relay 127.0.0.1:{port}") });
        self.cmdline.push(format!("bounce.{key}={port}"));
        Ok(())
    }
}

pub struct Running {
    iperf3: Option<tokio::process::Child>,
    stream: Option<(tokio::task::JoinHandle<()>, Verdicts)>,
    pub peers: Peers,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").infra(|| "cannot bind a loopback port".into())?;
    Ok(l.local_addr().infra(|| "no local address".into())?.port())
}

pub async fn start(services: &[Service], dir: &Path) -> Result<Running> {
    let mut r = Running { iperf3: None, stream: None, peers: Peers::default() };
    if !services.is_empty() {
        r.peers.cmdline.push(format!("bounce.peer={PEER_ADDR}"));
    }
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
                r.peers.add("iperf_port", port)?;
            }
            Service::Stream => {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .infra(|| "cannot bind the stream checker".into())?;
                let port = l.local_addr().infra(|| "no local address".into())?.port();
                let v: Verdicts = Default::default();
                r.stream = Some((tokio::spawn(stream::serve(l, v.clone())), v));
                r.peers.add("stream_port", port)?;
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

/// One guest connection to a service, relayed: QEMU (libslirp) starts this
/// for each connection to a forward, the connection on stdin and stdout
/// (one end of a socketpair). Only the host's loopback: a forward cannot
/// be turned into a way out. Silent, since stderr is the guest's socket too.
pub async fn relay(to: std::net::SocketAddr) -> Result<()> {
    if !to.ip().is_loopback() {
        return Err(Failure::input(format!("relay: {to} is not on the loopback")));
    }
    let fd = std::io::stdin().as_fd().try_clone_to_owned().infra(|| "relay: no stdin".into())?;
    let guest = std::os::unix::net::UnixStream::from(fd);
    guest.set_nonblocking(true).infra(|| "relay: stdin is not a socket".into())?;
    let mut guest = tokio::net::UnixStream::from_std(guest).infra(|| "relay: stdin is not a socket".into())?;
    let mut host = tokio::net::TcpStream::connect(to).await.infra(|| format!("relay: cannot reach {to}"))?;
    tokio::io::copy_bidirectional(&mut guest, &mut host).await.infra(|| "relay: connection lost".into())?;
    Ok(())
}
