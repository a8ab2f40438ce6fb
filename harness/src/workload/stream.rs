//! The verified stream's host side: a tokio listener on the loopback that
//! the guest reaches through its forward (`bounce relay`). Every byte the guest sends is
//! compared with the seeded generator here; for the other direction the
//! guest compares and reports back. Both verdicts end up in the cell.
//!
//! The generator must match workloads/src/bounce-stream.c: xorshift64*
//! words, little-endian bytes.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub struct Prng {
    state: u64,
    word: [u8; 8],
    used: usize,
}

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng { state: if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed }, word: [0; 8], used: 8 }
    }

    pub fn byte(&mut self) -> u8 {
        if self.used == 8 {
            let mut x = self.state;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.state = x;
            self.word = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            self.used = 0;
        }
        self.used += 1;
        self.word[self.used - 1]
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.byte();
        }
    }
}

/// What one transfer came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// `up` (guest to host, checked here) or `down` (checked by the guest).
    pub direction: String,
    pub expected: u64,
    pub received: u64,
    /// The first offset that differed, if any.
    pub mismatch_at: Option<u64>,
    /// The checking side's own words.
    pub said: String,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.mismatch_at.is_none() && self.received == self.expected && self.said.starts_with("ok")
    }
}

pub type Verdicts = Arc<Mutex<Vec<Verdict>>>;

/// Payload bytes of one `down-small` message: with Ethernet, IP and TCP
/// (timestamps) headers a 126-byte frame, under both copybreaks.
pub const SMALL_MESSAGE: usize = 60;

/// Serve until the task is dropped; every finished transfer lands in `out`.
pub async fn serve(listener: TcpListener, out: Verdicts) {
    while let Ok((sock, _)) = listener.accept().await {
        let out = out.clone();
        tokio::spawn(async move {
            if let Some(v) = transfer(sock).await {
                out.lock().unwrap().push(v);
            }
        });
    }
}

async fn transfer(sock: TcpStream) -> Option<Verdict> {
    let mut r = BufReader::new(sock);
    let mut header = String::new();
    r.read_line(&mut header).await.ok()?;
    let words: Vec<&str> = header.split_whitespace().collect();
    let (dir, seed, bytes) = match words.as_slice() {
        ["BOUNCE", d @ ("up" | "down" | "down-small"), s, b] => {
            (d.to_string(), s.parse::<u64>().ok()?, b.parse::<u64>().ok()?)
        }
        _ => return None,
    };
    let mut prng = Prng::new(seed);
    let mut buf = vec![0u8; 64 * 1024];
    if dir == "up" {
        let mut received = 0u64;
        let mut mismatch_at = None;
        loop {
            let n = r.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            for (i, b) in buf[..n].iter().enumerate() {
                if prng.byte() != *b && mismatch_at.is_none() {
                    mismatch_at = Some(received + i as u64);
                }
            }
            received += n as u64;
        }
        let said = match (mismatch_at, received == bytes) {
            (Some(at), _) => format!("mismatch at {at}"),
            (None, false) => format!("short: {received} of {bytes}"),
            (None, true) => format!("ok {received}"),
        };
        let _ = r.get_mut().write_all(format!("{said}\n").as_bytes()).await;
        Some(Verdict { direction: dir, expected: bytes, received, mismatch_at, said })
    } else {
        // down-small: messages small enough that each arrives as a frame
        // under the NICs' copybreak (e1000 copies frames under 256 bytes,
        // virtio-net under 128), the path that syncs part of a receive
        // buffer and copies it: sent one at a time, so QEMU's user
        // network has one message to put in each frame.
        let small = dir == "down-small";
        let chunk = if small { SMALL_MESSAGE } else { buf.len() };
        if small {
            r.get_mut().set_nodelay(true).ok()?;
        }
        let mut sent = 0u64;
        while sent < bytes {
            let n = (bytes - sent).min(chunk as u64) as usize;
            prng.fill(&mut buf[..n]);
            r.get_mut().write_all(&buf[..n]).await.ok()?;
            sent += n as u64;
            if small {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        let mut said = String::new();
        r.read_line(&mut said).await.ok()?;
        let said = said.trim().to_string();
        let mismatch_at = said.strip_prefix("mismatch at ").and_then(|n| n.parse().ok());
        let received = said.strip_prefix("ok ").and_then(|n| n.parse().ok()).unwrap_or(0);
        Some(Verdict { direction: dir, expected: bytes, received, mismatch_at, said })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn checker() -> (u16, Verdicts, tokio::task::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let v: Verdicts = Arc::default();
        let task = tokio::spawn(serve(l, v.clone()));
        (port, v, task)
    }

    /// A guest's upload, optionally with one byte flipped on the way.
    async fn upload(port: u16, seed: u64, bytes: usize, flip: Option<usize>) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(format!("BOUNCE up {seed} {bytes}\n").as_bytes()).await.unwrap();
        let mut data = vec![0u8; bytes];
        Prng::new(seed).fill(&mut data);
        if let Some(i) = flip {
            data[i] ^= 0x40;
        }
        s.write_all(&data).await.unwrap();
        s.shutdown().await.unwrap();
        let mut reply = String::new();
        BufReader::new(s).read_line(&mut reply).await.unwrap();
        reply.trim().to_string()
    }

    #[tokio::test]
    async fn a_clean_stream_passes_and_a_flipped_byte_is_found() {
        let (port, v, task) = checker().await;
        assert_eq!(upload(port, 7, 300_000, None).await, "ok 300000");
        assert_eq!(upload(port, 7, 300_000, Some(123_457)).await, "mismatch at 123457");
        task.abort();
        let v = v.lock().unwrap();
        assert!(v[0].ok());
        assert!(!v[1].ok());
        assert_eq!(v[1].mismatch_at, Some(123_457));
    }

    #[tokio::test]
    async fn the_download_is_the_generator_and_the_guest_verdict_is_kept() {
        let (port, v, task) = checker().await;
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"BOUNCE down 99 100000\n").await.unwrap();
        let mut got = vec![0u8; 100_000];
        s.read_exact(&mut got).await.unwrap();
        let mut want = vec![0u8; 100_000];
        Prng::new(99).fill(&mut want);
        assert_eq!(got, want);
        s.write_all(b"mismatch at 5\n").await.unwrap();
        drop(s);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        task.abort();
        let v = v.lock().unwrap();
        assert_eq!(v[0].mismatch_at, Some(5));
        assert!(!v[0].ok());
    }

    #[test]
    fn the_generator_matches_the_guest_program() {
        // First bytes of bounce-stream.c's generator for seed 1.
        let mut p = Prng::new(1);
        let first: Vec<u8> = (0..8).map(|_| p.byte()).collect();
        let x: u64 = {
            let mut x = 1u64;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        assert_eq!(first, x.to_le_bytes());
    }
}
