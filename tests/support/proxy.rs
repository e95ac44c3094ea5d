//! A forward proxy written for the tests, as corporate networks have: it answers `CONNECT
//! host:port` by opening a tunnel and passing bytes both ways, resolving names under `.test`
//! to loopback (so a reference to `registry.test:PORT` reaches a test registry only through
//! it). It records each `CONNECT` head and every byte clients sent, so a test can show that a
//! request went through it and that no registry credential did in the clear. With a user and
//! password set, it answers `407` to a `CONNECT` without them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A running proxy; its threads end with the test process.
pub struct Proxy {
    port: u16,
    seen: Arc<Seen>,
}

#[derive(Default)]
struct Seen {
    /// The head of each `CONNECT`, as sent.
    heads: Mutex<Vec<String>>,
    /// Everything clients sent, heads and tunnelled bytes.
    from_clients: Mutex<Vec<u8>>,
}

impl Proxy {
    /// Starts a proxy; with `credentials`, it asks clients for them (`Proxy-Authorization:
    /// Basic`).
    pub fn start(credentials: Option<(&str, &str)>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Seen::default());
        let expected = credentials.map(|(user, password)| {
            format!(
                "Basic {}",
                super::base64(format!("{user}:{password}").as_bytes())
            )
        });
        let shared = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (seen, expected) = (shared.clone(), expected.clone());
                std::thread::spawn(move || tunnel(client, &seen, expected.as_deref()));
            }
        });
        Proxy { port, seen }
    }

    /// `http://127.0.0.1:<port>`, for `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The target of each `CONNECT` so far (`registry.test:5000`).
    pub fn targets(&self) -> Vec<String> {
        (self.seen.heads.lock().unwrap().iter())
            .filter_map(|head| head.split_whitespace().nth(1).map(str::to_string))
            .collect()
    }

    /// The `CONNECT` heads so far, as sent.
    pub fn heads(&self) -> Vec<String> {
        self.seen.heads.lock().unwrap().clone()
    }

    /// Whether clients ever sent `needle` through the proxy in the clear.
    pub fn saw_bytes(&self, needle: &[u8]) -> bool {
        let bytes = self.seen.from_clients.lock().unwrap();
        !needle.is_empty() && bytes.windows(needle.len()).any(|w| w == needle)
    }
}

/// Serves one client: reads its `CONNECT`, opens the tunnel and passes bytes until either side
/// closes.
fn tunnel(client: TcpStream, seen: &Seen, expected: Option<&str>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    seen.heads.lock().unwrap().push(head.clone());
    seen.from_clients
        .lock()
        .unwrap()
        .extend_from_slice(head.as_bytes());
    let mut client_out = client.try_clone().unwrap();
    let target = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    if !head.starts_with("CONNECT ") {
        let _ =
            client_out.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let given = (head.lines())
        .find_map(|line| {
            line.split_once(':')
                .filter(|(name, _)| name.eq_ignore_ascii_case("proxy-authorization"))
        })
        .map(|(_, value)| value.trim().to_string());
    if expected.is_some() && given.as_deref() != expected {
        let _ = client_out.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
        );
        return;
    }
    let (host, port) = target.rsplit_once(':').unwrap_or((&target, "443"));
    let host = if host.ends_with(".test") {
        "127.0.0.1"
    } else {
        host
    };
    let Ok(server) = TcpStream::connect((host, port.parse::<u16>().unwrap_or(443))) else {
        let _ = client_out.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let _ = client_out.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    let mut server_in = server.try_clone().unwrap();
    let mut server_out = server;
    let downstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_in, &mut client_out);
        let _ = client_out.shutdown(Shutdown::Write);
    });
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.from_clients
                    .lock()
                    .unwrap()
                    .extend_from_slice(&buffer[..n]);
                if server_out.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = server_out.shutdown(Shutdown::Write);
    let _ = downstream.join();
}
