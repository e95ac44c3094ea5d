//! An HTTP front for a real plain-HTTP registry, written for the tests: every request goes
//! through a rule that forwards it, or redirects it, answers it, cuts it or stalls it, as flaky
//! networks, CDNs and overloaded registries do. It records what it saw. It can also page a
//! tag list the way Distribution 3 and Harbor do, which the Distribution 2.8 in Debian does not,
//! and stand in for a registry with the Referrers API (see [`ReferrersApi`]).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::referrers_api::ReferrersApi;

/// One request as the rule sees it.
pub struct Request {
    pub method: String,
    /// The path and query.
    pub target: String,
    /// `Range`, if sent.
    pub range: Option<String>,
    /// `Authorization`, if sent.
    pub authorization: Option<String>,
    /// How many requests of its kind (method and path, query ignored) came before it.
    pub repeats: usize,
}

/// What to do with a request.
pub enum Action {
    /// Pass it to the registry and its answer back.
    Forward,
    /// The same, with this `Authorization` instead of the client's (a storage server's own).
    ForwardAs(String),
    /// Answer `307` to this location.
    Redirect(String),
    /// Answer with this status and headers, and a small JSON error body.
    Respond(u16, Vec<(String, String)>),
    /// Answer with this status, headers and body.
    Reply(u16, Vec<(String, String)>, String),
    /// Forward, and point the answer's `Location` at this origin (`http://host:port`)
    /// instead: an upload session handed to another host.
    ForwardRelocated(String),
    /// Answer 200 with no `Content-Length` and a body that never ends (until the client
    /// hangs up): a body longer than its descriptor says.
    Endless,
    /// Forward, but close the connection after this many bytes of the response body.
    CutResponse(u64),
    /// Forward, sending the response body at this many bytes per second (a slow CDN: each
    /// connection is slow, several together are not).
    Throttle(u64),
    /// Forward, sending the response body one byte at a time, one every this long: a
    /// trickle that never stalls long enough for a timeout between bytes.
    Trickle(Duration),
    /// Answer with this status and headers, and the `Content-Length` of this body, but send
    /// only its first half and close: a connection cut halfway through a small answer.
    ReplyHalf(u16, Vec<(String, String)>, String),
    /// Forward, but close the connection after this many bytes of the request body.
    CutRequest(u64),
    /// Say nothing for this long, then close.
    Stall(Duration),
    /// Forward a tag-list request and answer one page of the registry's list: the tags after
    /// `last`, at most `n`, with a `Link` to the next page when more remain.
    Paginate,
}

/// The rule: called for each request, with whether it is the first of its kind
/// (method and path, query ignored).
pub type Rule = dyn Fn(&Request, bool) -> Action + Send + Sync;

/// The rule of an overloaded registry: the first request of each kind (method and path) is
/// answered 503, the second 429 with `Retry-After: 1`, and the rest are forwarded.
pub fn unavailable_then_busy(request: &Request, _first: bool) -> Action {
    match request.repeats {
        0 => Action::Respond(503, Vec::new()),
        1 => Action::Respond(429, vec![("Retry-After".into(), "1".into())]),
        _ => Action::Forward,
    }
}

/// A running front; its threads end with the test process.
pub struct Front {
    port: u16,
    state: Arc<State>,
}

struct State {
    registry_port: u16,
    rule: Box<Rule>,
    seen: Mutex<Vec<Request>>,
    /// How many requests of each kind came so far.
    kinds: Mutex<HashMap<String, usize>>,
    /// Response body bytes sent to clients.
    bytes_down: AtomicU64,
    /// Request body bytes passed to the registry.
    bytes_up: AtomicU64,
    /// The Referrers API it answers for the registry, if it stands in for one that has it.
    api: Option<ReferrersApi>,
}

impl Front {
    /// Starts a front for the plain-HTTP registry at `registry_port`.
    pub fn start(
        registry_port: u16,
        rule: impl Fn(&Request, bool) -> Action + Send + Sync + 'static,
    ) -> Front {
        Front::start_with(registry_port, Box::new(rule), None)
    }

    /// Starts a front that stands in for a registry WITH the OCI Referrers API before the
    /// plain-HTTP registry at `registry_port` (which has none): it forwards everything else.
    pub fn with_referrers_api(registry_port: u16, api: ReferrersApi) -> Front {
        Front::start_with(registry_port, Box::new(|_, _| Action::Forward), Some(api))
    }

    fn start_with(registry_port: u16, rule: Box<Rule>, api: Option<ReferrersApi>) -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            registry_port,
            rule,
            seen: Mutex::new(Vec::new()),
            kinds: Mutex::new(HashMap::new()),
            bytes_down: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            api,
        });
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(client, state));
            }
        });
        Front { port, state }
    }

    /// `127.0.0.1:<port>`, the registry part of references that go through the front.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// For each request seen: method, target and `Range`.
    pub fn seen(&self) -> Vec<(String, String, Option<String>)> {
        let seen = self.state.seen.lock().unwrap();
        seen.iter()
            .map(|r| (r.method.clone(), r.target.clone(), r.range.clone()))
            .collect()
    }

    /// The `Authorization` headers seen, one per request (`None` where there was none).
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.authorization.clone())
            .collect()
    }

    /// Response body bytes sent to clients so far.
    pub fn bytes_down(&self) -> u64 {
        self.state.bytes_down.load(Ordering::Relaxed)
    }

    /// Request body bytes passed to the registry so far.
    pub fn bytes_up(&self) -> u64 {
        self.state.bytes_up.load(Ordering::Relaxed)
    }

    /// The Referrers API it stands in for (fronts made by [`Front::with_referrers_api`]).
    pub fn api(&self) -> &ReferrersApi {
        self.state
            .api
            .as_ref()
            .expect("a front with the Referrers API")
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

fn header(head: &[String], name: &str) -> Option<String> {
    (head.iter().skip(1))
        .find_map(|line| {
            line.split_once(':')
                .filter(|(key, _)| key.trim().eq_ignore_ascii_case(name))
        })
        .map(|(_, value)| value.trim().to_string())
}

/// One client connection: one request, answered as the rule says, then closed.
fn serve(mut client: TcpStream, state: Arc<State>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let Some(head) = read_head(&mut reader) else {
        return;
    };
    let mut parts = head[0].split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let kind = format!("{method} {}", target.split('?').next().unwrap_or_default());
    let repeats = {
        let mut kinds = state.kinds.lock().unwrap();
        let count = kinds.entry(kind).or_default();
        *count += 1;
        *count - 1
    };
    let request = Request {
        method,
        target,
        range: header(&head, "range"),
        authorization: header(&head, "authorization"),
        repeats,
    };
    let action = (state.rule)(&request, repeats == 0);
    let (method, target) = (request.method.clone(), request.target.clone());
    state.seen.lock().unwrap().push(request);
    let api = state
        .api
        .as_ref()
        .filter(|_| matches!(action, Action::Forward));
    if let Some(answer) = api.and_then(|api| api.answer(&method, &target)) {
        let _ = client.write_all(answer.as_bytes());
        return;
    }
    // A manifest PUT to the API's stand-in is read whole, to record what it names.
    let recorded = (api.filter(|_| method == "PUT" && target.contains("/manifests/"))).map(|api| {
        let length = header(&head, "content-length").and_then(|n| n.parse().ok());
        let mut body = vec![0; length.unwrap_or(0)];
        let _ = reader.read_exact(&mut body);
        let path = target.split('?').next().unwrap_or_default();
        let subject = api.record(path, header(&head, "content-type").as_deref(), &body);
        (body, subject)
    });
    let own_authorization = match &action {
        Action::ForwardAs(value) => Some(value.clone()),
        _ => None,
    };
    let relocated = match &action {
        Action::ForwardRelocated(origin) => Some(origin.clone()),
        _ => None,
    };
    let throttle = match &action {
        Action::Throttle(rate) => Some(Pace::Rate(*rate)),
        Action::Trickle(every) => Some(Pace::ByteEvery(*every)),
        _ => None,
    };
    let (cut_response, cut_request) = match action {
        Action::Redirect(location) => {
            let _ = write!(
                client,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
        Action::Respond(status, mut headers) => {
            let body =
                format!(r#"{{"errors":[{{"code":"UNAVAILABLE","message":"injected {status}"}}]}}"#);
            headers.push(("Content-Type".into(), "application/json".into()));
            reply(&mut client, status, &headers, &body);
            return;
        }
        Action::Reply(status, headers, body) => {
            reply(&mut client, status, &headers, &body);
            return;
        }
        Action::ReplyHalf(status, mut headers, body) => {
            headers.push(("Content-Length".into(), body.len().to_string()));
            let half = &body[..body.len() / 2];
            let _ = write!(client, "HTTP/1.1 {status} Injected\r\n");
            for (name, value) in headers {
                let _ = write!(client, "{name}: {value}\r\n");
            }
            let _ = write!(client, "Connection: close\r\n\r\n{half}");
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        Action::Endless => {
            let _ = client.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let zeros = [0u8; 16 * 1024];
            while client.write_all(&zeros).is_ok() {
                state
                    .bytes_down
                    .fetch_add(zeros.len() as u64, Ordering::Relaxed);
            }
            return;
        }
        Action::Stall(pause) => {
            std::thread::sleep(pause);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        Action::Paginate => {
            let target = state.seen.lock().unwrap().last().unwrap().target.clone();
            let page = page_of_tags(&target, &head, state.registry_port);
            let _ = client.write_all(page.as_bytes());
            return;
        }
        Action::Forward
        | Action::ForwardAs(_)
        | Action::ForwardRelocated(_)
        | Action::Throttle(_)
        | Action::Trickle(_) => (None, None),
        Action::CutResponse(after) => (Some(after), None),
        Action::CutRequest(after) => (None, Some(after)),
    };

    let Ok(mut registry) = TcpStream::connect(("127.0.0.1", state.registry_port)) else {
        return;
    };
    let mut upstream = String::new();
    let replaced = |line: &str| {
        let line = line.to_ascii_lowercase();
        line.starts_with("connection:")
            || (own_authorization.is_some() && line.starts_with("authorization:"))
    };
    for line in head.iter().filter(|line| !replaced(line)) {
        upstream.push_str(line);
        upstream.push_str("\r\n");
    }
    if let Some(value) = &own_authorization {
        upstream.push_str(&format!("Authorization: {value}\r\n"));
    }
    upstream.push_str("Connection: close\r\n\r\n");
    if registry.write_all(upstream.as_bytes()).is_err() {
        return;
    }
    if let Some((body, _)) = &recorded {
        if registry.write_all(body).is_err() {
            return;
        }
        (state.bytes_up).fetch_add(body.len() as u64, Ordering::Relaxed);
    }
    // The request body, as it comes, to the registry (cut short when asked).
    let to_registry = registry.try_clone().unwrap();
    let counting = state.clone();
    let body_pipe =
        std::thread::spawn(move || pipe(&mut reader, to_registry, cut_request, &counting.bytes_up));
    if cut_request.is_some() {
        let _ = body_pipe.join();
        let _ = registry.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    // The answer: its head whole, its body counted and cut short when asked.
    let mut from_registry = BufReader::new(registry);
    let Some(answer_head) = read_head(&mut from_registry) else {
        return;
    };
    let mut answer_head: Vec<String> = match &relocated {
        Some(origin) => answer_head
            .iter()
            .map(|line| relocate(line, origin))
            .collect(),
        None => answer_head,
    };
    if let Some((_, Some(subject))) = &recorded
        && answer_head[0].contains(" 201 ")
    {
        answer_head.push(format!("OCI-Subject: {subject}"));
    }
    let mut answer = answer_head.join("\r\n");
    answer.push_str("\r\n\r\n");
    if client.write_all(answer.as_bytes()).is_err() {
        return;
    }
    let to_client = client.try_clone().unwrap();
    match throttle {
        Some(pace) => pipe(
            &mut Throttled::new(from_registry, pace),
            to_client,
            None,
            &state.bytes_down,
        ),
        None => pipe(
            &mut from_registry,
            to_client,
            cut_response,
            &state.bytes_down,
        ),
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// Writes a whole answer with a body.
fn reply(client: &mut TcpStream, status: u16, headers: &[(String, String)], body: &str) {
    let mut extra = String::new();
    for (name, value) in headers {
        extra.push_str(&format!("{name}: {value}\r\n"));
    }
    let _ = write!(
        client,
        "HTTP/1.1 {status} Injected\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A `Location` header line pointed at `origin`, keeping its path and query; other lines as
/// they are.
fn relocate(line: &str, origin: &str) -> String {
    let Some((name, value)) = line.split_once(':') else {
        return line.to_string();
    };
    if !name.trim().eq_ignore_ascii_case("location") {
        return line.to_string();
    }
    let value = value.trim();
    let path = match value.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => value,
    };
    format!("Location: {origin}{path}")
}

/// Asks the registry for the whole tag list `target` names (it sends every tag whatever `n`
/// is) and returns the HTTP answer a paging registry would give.
fn page_of_tags(target: &str, head: &[String], registry_port: u16) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let param = |name: &str| {
        (query.split('&'))
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
    };
    let mut registry = TcpStream::connect(("127.0.0.1", registry_port)).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\n");
    for line in head
        .iter()
        .skip(1)
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
    {
        request.push_str(&format!("{line}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    registry.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    registry.read_to_string(&mut answer).unwrap();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let mut list: serde_json::Value = serde_json::from_str(body).unwrap();
    let mut tags: Vec<String> = (list["tags"].as_array().unwrap().iter())
        .map(|tag| tag.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    let after = param("last");
    tags.retain(|tag| after.as_ref().is_none_or(|last| tag > last));
    let n = param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(tags.len());
    let link = match tags.len() > n {
        true => format!(
            "Link: <{path}?last={}&n={n}>; rel=\"next\"\r\n",
            tags[n - 1]
        ),
        false => String::new(),
    };
    tags.truncate(n);
    list["tags"] = serde_json::json!(tags);
    let body = list.to_string();
    format!(
        "HTTP/1.1 200 OK\r\n{link}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Copies `from` to `to` until the end, or until `limit` bytes, counting into `counter`.
fn pipe(from: &mut impl Read, mut to: TcpStream, limit: Option<u64>, counter: &AtomicU64) {
    let mut buffer = [0; 16 * 1024];
    let mut sent = 0;
    loop {
        let room = limit.map_or(buffer.len() as u64, |limit| {
            (limit - sent).min(buffer.len() as u64)
        }) as usize;
        if room == 0 {
            return;
        }
        let n = match from.read(&mut buffer[..room]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buffer[..n]).is_err() {
            return;
        }
        sent += n as u64;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// How fast a [`Throttled`] reader goes.
#[derive(Clone, Copy)]
enum Pace {
    /// Never more than this many bytes per second, in reads of up to 8 KiB.
    Rate(u64),
    /// One byte per read, each after this pause.
    ByteEvery(Duration),
}

/// A reader that never goes faster than its pace.
struct Throttled<R> {
    inner: R,
    pace: Pace,
    started: std::time::Instant,
    read: u64,
}

impl<R: Read> Throttled<R> {
    fn new(inner: R, pace: Pace) -> Throttled<R> {
        Throttled {
            inner,
            pace,
            started: std::time::Instant::now(),
            read: 0,
        }
    }
}

impl<R: Read> Read for Throttled<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let rate = match self.pace {
            Pace::Rate(rate) => rate.max(1),
            Pace::ByteEvery(pause) => {
                std::thread::sleep(pause);
                let room = buffer.len().min(1);
                return self.inner.read(&mut buffer[..room]);
            }
        };
        let room = buffer.len().min(8 * 1024);
        let n = self.inner.read(&mut buffer[..room])?;
        self.read += n as u64;
        let due = Duration::from_secs_f64(self.read as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
        Ok(n)
    }
}
