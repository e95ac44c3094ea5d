//! A token issuer for the registry's `auth: token`, written for the tests: HTTPS (rustls), and
//! RS256 JWTs with an `x5c` header signed by openssl. The robot user gets every action it
//! asks for; anonymous users get `pull` on repositories under `public/` and nothing else.
//! It speaks both forms of the token spec: `GET` with Basic credentials, and the OAuth2 `POST`
//! with a password grant (answering a refresh token, [`REFRESH_TOKEN`], when asked for offline
//! access) or a refresh-token grant. It can be told to refuse `POST`, as older servers do.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::registry::{ROBOT_PASSWORD, ROBOT_USER, self_signed};

/// The `service` the registry and the issuer agree on.
pub const SERVICE: &str = "test-registry";
/// The `issuer` the registry expects in every token.
pub const ISSUER: &str = "test-issuer";
/// The refresh token (identity token) it gives the robot user, and takes in its place.
pub const REFRESH_TOKEN: &str = "rt-robot-0f1e2d3c4b5a";

/// One request the issuer was sent.
#[derive(Clone, Debug)]
pub struct Asked {
    pub method: String,
    /// Its query and form parameters, decoded.
    pub params: Vec<(String, String)>,
    /// Its `Authorization`, if any.
    pub authorization: Option<String>,
}

impl Asked {
    /// The value of parameter `name`, if sent.
    pub fn param(&self, name: &str) -> Option<&str> {
        (self.params.iter())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A running token issuer; its thread ends with the test process.
pub struct TokenServer {
    port: u16,
    /// The requests it was sent, in order.
    asked: Arc<Mutex<Vec<Asked>>>,
    /// Whether it answers `POST` with 405.
    refuses_post: Arc<AtomicBool>,
    /// The certificate whose key signs tokens, for the registry's `rootcertbundle`.
    pub signing_cert: PathBuf,
}

impl TokenServer {
    /// Starts an issuer serving HTTPS with `tls_cert`/`tls_key`, signing with a new key in `dir`.
    pub fn start(dir: &Path, tls_cert: &Path, tls_key: &Path) -> TokenServer {
        let signing_key = dir.join("issuer.key");
        let signing_cert = dir.join("issuer.crt");
        self_signed(&signing_key, &signing_cert, "test token issuer");
        let certs = CertificateDer::pem_file_iter(tls_cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(tls_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let x5c = pem_body(&signing_cert);
        let asked = Arc::new(Mutex::new(Vec::new()));
        let refuses_post = Arc::new(AtomicBool::new(false));
        let (log, refuses) = (asked.clone(), refuses_post.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let config = config.clone();
                let (key, x5c, log) = (signing_key.clone(), x5c.clone(), log.clone());
                let refuses = refuses.clone();
                std::thread::spawn(move || serve(stream, config, &key, &x5c, &log, &refuses));
            }
        });
        TokenServer {
            port,
            asked,
            refuses_post,
            signing_cert,
        }
    }

    /// The `scope` of every token request so far, in order (empty for none).
    pub fn scopes(&self) -> Vec<String> {
        (self.asked().iter())
            .map(|asked| {
                (asked.params.iter())
                    .filter(|(name, _)| name == "scope")
                    .map(|(_, scope)| scope.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// Every request so far, in order.
    pub fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }

    /// From now on, answers `POST` with 405, as servers that know only `GET` do.
    pub fn refuse_post(&self) {
        self.refuses_post.store(true, Ordering::Relaxed);
    }

    /// The `realm` the registry sends clients to.
    pub fn realm(&self) -> String {
        format!("https://127.0.0.1:{}/token", self.port)
    }
}

/// Answers one HTTPS request on `stream`.
fn serve(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    key: &Path,
    x5c: &str,
    asked: &Mutex<Vec<Asked>>,
    refuses_post: &AtomicBool,
) {
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match tls.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default().to_string();
    let header = |wanted: &str| {
        (head.lines())
            .find_map(|line| {
                line.split_once(':')
                    .filter(|(name, _)| name.eq_ignore_ascii_case(wanted))
            })
            .map(|(_, value)| value.trim().to_string())
    };
    let length: usize = header("content-length")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length.min(64 * 1024)];
    if tls.read_exact(&mut body).is_err() {
        return;
    }
    let query = target.split_once('?').map_or("", |(_, query)| query);
    let form = String::from_utf8_lossy(&body);
    let params: Vec<(String, String)> = (query.split('&').chain(form.split('&')))
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_string(), percent_decode(value)))
        .collect();
    let request = Asked {
        method,
        params,
        authorization: header("authorization"),
    };
    asked.lock().unwrap().push(request.clone());
    let (status, body) = match request.method.as_str() {
        "POST" if refuses_post.load(Ordering::Relaxed) => (
            "405 Method Not Allowed",
            r#"{"errors":[{"code":"UNSUPPORTED","message":"GET only"}]}"#.to_string(),
        ),
        _ => answer(&request, key, x5c),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(response.as_bytes());
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// Who a request proves to be: `Some(true)` for the robot, `Some(false)` for anyone, `None`
/// for wrong credentials. Basic takes the robot's password or its refresh token; a `POST`
/// takes a password grant or a refresh-token grant.
fn identify(request: &Asked) -> Option<bool> {
    let robot_basic = |encoded: &str| {
        let decoded = String::from_utf8_lossy(&base64_decode(encoded)).into_owned();
        decoded == format!("{ROBOT_USER}:{ROBOT_PASSWORD}")
            || decoded
                .split_once(':')
                .is_some_and(|(_, secret)| secret == REFRESH_TOKEN)
    };
    match (request.method.as_str(), request.param("grant_type")) {
        ("POST", Some("password")) => Some(
            request.param("username") == Some(ROBOT_USER)
                && request.param("password") == Some(ROBOT_PASSWORD),
        )
        .filter(|ok| *ok),
        ("POST", Some("refresh_token")) => {
            Some(request.param("refresh_token") == Some(REFRESH_TOKEN)).filter(|ok| *ok)
        }
        ("POST", _) => None,
        _ => match request
            .authorization
            .as_deref()
            .map(|a| a.strip_prefix("Basic "))
        {
            None => Some(false),
            Some(Some(encoded)) if robot_basic(encoded) => Some(true),
            Some(_) => None,
        },
    }
}

/// The status line and body for a token request.
fn answer(request: &Asked, key: &Path, x5c: &str) -> (&'static str, String) {
    let Some(robot) = identify(request) else {
        return (
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid credentials"}]}"#.into(),
        );
    };
    let params = &request.params;
    let access: Vec<serde_json::Value> = (params.iter())
        .filter(|(name, _)| name == "scope")
        .flat_map(|(_, scopes)| scopes.split(' '))
        .filter_map(|scope| {
            let (kind_and_name, actions) = scope.rsplit_once(':')?;
            let (kind, name) = kind_and_name.split_once(':')?;
            let granted: Vec<&str> = (actions.split(','))
                .filter(|action| robot || (*action == "pull" && name.starts_with("public/")))
                .collect();
            Some(serde_json::json!({ "type": kind, "name": name, "actions": granted }))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": if robot { ROBOT_USER } else { "" }, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "x5c": [x5c] });
    let signing_input = format!(
        "{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    );
    let token = format!(
        "{signing_input}.{}",
        base64url(&sign(key, signing_input.as_bytes()))
    );
    let mut granted =
        serde_json::json!({ "token": token, "access_token": token, "expires_in": 300 });
    if request.param("access_type") == Some("offline") {
        granted["refresh_token"] = REFRESH_TOKEN.into();
    }
    ("200 OK", granted.to_string())
}

/// An RS256 signature by `key`, made by openssl.
fn sign(key: &Path, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", key.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running openssl");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap().stdout
}

/// The base64 body of a PEM certificate: standard base64 of its DER, as `x5c` wants.
fn pem_body(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|line| !line.starts_with("-----"))
        .collect()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64url without padding, as JWTs are written.
fn base64url(bytes: &[u8]) -> String {
    super::base64(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn base64_decode(text: &str) -> Vec<u8> {
    let values: Vec<u32> = (text.bytes())
        .filter(|b| *b != b'=')
        .filter_map(|b| ALPHABET.iter().position(|a| *a == b).map(|p| p as u32))
        .collect();
    let mut out = Vec::new();
    for chunk in values.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, v)| n | v << (18 - 6 * i));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
