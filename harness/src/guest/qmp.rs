//! QMP over a socket QEMU inherited.
//!
//! qapi's typed commands (`qapi::qmp::*`, each with its `Ok` type) are used
//! as they are, but the wire is read here, line by line, as plain JSON:
//! qapi's own message type ends the whole stream at the first event or enum
//! value it does not know (any QEMU newer than its bundled schema), and a
//! harness must not go deaf because QEMU grew a feature.

use crate::failure::{Classify, Failure, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

/// An asynchronous QMP event, whatever its name.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct Qmp {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    pub qemu_version: String,
}

impl Qmp {
    /// Read the greeting, negotiate capabilities, and start routing: replies
    /// to their waiting command, events to the returned channel (which must
    /// be drained: the reader also carries the replies).
    pub async fn connect(stream: UnixStream, timeout: Duration) -> Result<(Qmp, mpsc::UnboundedReceiver<Event>)> {
        let (read, write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let greeting = tokio::time::timeout(timeout, lines.next_line())
            .await
            .map_err(|_| Failure::infra("QEMU sent no QMP greeting in time"))?
            .infra(|| "QMP greeting".into())?
            .ok_or_else(|| Failure::infra("QEMU closed QMP before its greeting (did it start? see qemu.stderr)"))?;
        let greeting: Value = serde_json::from_str(&greeting).infra(|| "QMP greeting is not JSON".into())?;
        let v = &greeting["QMP"]["version"]["qemu"];
        let qemu_version = format!("{}.{}.{}", v["major"], v["minor"], v["micro"]);

        let pending: Pending = Arc::default();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let routes = pending.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if let Some(name) = msg.get("event").and_then(Value::as_str) {
                    let _ = events_tx
                        .send(Event { name: name.to_string(), data: msg.get("data").cloned().unwrap_or(Value::Null) });
                } else if let Some(id) = msg.get("id").and_then(Value::as_u64) {
                    if let Some(tx) = routes.lock().unwrap().remove(&id) {
                        let _ = tx.send(msg);
                    }
                }
            }
            // Dropping the senders wakes every waiting command with an error.
            routes.lock().unwrap().clear();
        });
        let qmp = Qmp { writer: tokio::sync::Mutex::new(write), pending, next_id: AtomicU64::new(1), qemu_version };
        qmp.execute(&qapi::qmp::qmp_capabilities { enable: None }, timeout).await?;
        Ok((qmp, events_rx))
    }

    /// Run one typed command and decode its typed reply.
    pub async fn execute<C: qapi::Command>(&self, command: &C, timeout: Duration) -> Result<C::Ok> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut line = serde_json::to_vec(&qapi::Execute::new(command, Some(id)))
            .infra(|| format!("cannot encode QMP {}", C::NAME))?;
        line.push(b'\n');
        self.writer.lock().await.write_all(&line).await.infra(|| format!("QMP {} not sent", C::NAME))?;
        let reply = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| Failure::infra(format!("QMP {} got no reply in {timeout:?}", C::NAME)))?
            .map_err(|_| Failure::infra(format!("QMP closed before replying to {}", C::NAME)))?;
        if let Some(ret) = reply.get("return") {
            return serde_json::from_value(ret.clone())
                .map_err(|e| Failure::infra(format!("QMP {} reply not understood ({e}): {reply}", C::NAME)));
        }
        let desc =
            serde_json::from_value::<qapi::Error>(reply.clone()).map(|e| e.desc).unwrap_or_else(|_| reply.to_string());
        Err(Failure::infra(format!("QMP {} failed: {desc}", C::NAME)))
    }
}
