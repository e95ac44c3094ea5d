//! A front for a real registry that sends blob downloads elsewhere, as registries backed by
//! S3 or a CDN do: every request is passed through, except `GET /v2/<name>/blobs/<digest>`,
//! which is answered with a 307 to a "storage" server on another port. The storage server
//! fetches the blob from the registry with its own credentials and records whether the client
//! sent it an `Authorization` header (it must not).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// The running front and storage server; their threads end with the test process.
pub struct RedirectingFront {
    port: u16,
    /// For each blob the storage server served: the `Authorization` header it got, if any.
    pub storage_saw: Arc<Mutex<Vec<Option<String>>>>,
}

impl RedirectingFront {
    /// Starts a front for the plain-HTTP registry at `registry_port`; the storage server uses
    /// `basic` (an `Authorization` value) to fetch blobs.
    pub fn start(registry_port: u16, basic: String) -> RedirectingFront {
        let storage = TcpListener::bind("127.0.0.1:0").unwrap();
        let storage_port = storage.local_addr().unwrap().port();
        let storage_saw = Arc::new(Mutex::new(Vec::new()));
        let saw = storage_saw.clone();
        std::thread::spawn(move || {
            for client in storage.incoming().flatten() {
                let (saw, basic) = (saw.clone(), basic.clone());
                std::thread::spawn(move || serve_storage(client, registry_port, &basic, &saw));
            }
        });
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = front.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in front.incoming().flatten() {
                std::thread::spawn(move || serve_front(client, registry_port, storage_port));
            }
        });
        RedirectingFront { port, storage_saw }
    }

    /// `127.0.0.1:<port>`, the registry part of references that go through the front.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The request line and header lines of one request, read up to the blank line.
fn read_head(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            return Some(lines);
        }
        lines.push(line);
    }
}

/// One connection to the front: a blob GET is redirected; anything else goes to the
/// registry with `Connection: close`, and the bytes are piped both ways until it closes.
fn serve_front(client: TcpStream, registry_port: u16, storage_port: u16) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let Some(head) = read_head(&mut reader) else {
        return;
    };
    let mut client = client;
    let target = head[0]
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    if head[0].starts_with("GET ") && target.contains("/blobs/sha256:") {
        let location = format!("http://127.0.0.1:{storage_port}{target}");
        let _ = write!(
            client,
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    let Ok(mut registry) = TcpStream::connect(("127.0.0.1", registry_port)) else {
        return;
    };
    let mut upstream = String::new();
    for line in &head {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            upstream.push_str(line);
            upstream.push_str("\r\n");
        }
    }
    upstream.push_str("Connection: close\r\n\r\n");
    if registry.write_all(upstream.as_bytes()).is_err() {
        return;
    }
    let buffered: Vec<u8> = reader.buffer().to_vec();
    let _ = registry.write_all(&buffered);
    let mut to_registry = registry.try_clone().unwrap();
    let mut from_client = reader.into_inner();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_registry);
    });
    let _ = std::io::copy(&mut registry, &mut client);
}

/// One connection to the storage server: records the client's `Authorization`, then serves
/// the blob fetched from the registry with the storage server's own credentials.
fn serve_storage(
    client: TcpStream,
    registry_port: u16,
    basic: &str,
    saw: &Mutex<Vec<Option<String>>>,
) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let Some(head) = read_head(&mut reader) else {
        return;
    };
    let authorization = (head.iter().skip(1))
        .find_map(|line| {
            line.split_once(':')
                .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        })
        .map(|(_, value)| value.trim().to_string());
    saw.lock().unwrap().push(authorization);
    let target = head[0].split_whitespace().nth(1).unwrap_or_default();
    let Ok(mut registry) = TcpStream::connect(("127.0.0.1", registry_port)) else {
        return;
    };
    let _ = write!(
        registry,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {basic}\r\nConnection: close\r\n\r\n"
    );
    let mut response = Vec::new();
    let _ = registry.read_to_end(&mut response);
    let mut client = client;
    let _ = client.write_all(&response);
}
