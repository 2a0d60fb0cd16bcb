//! Shared test support: finding the emulator, clients, keys, and a fault-injecting HTTP proxy.

use aws_sdk_kms::config::{Credentials, Region};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_kms::Client;
use base64::Engine as _;
use keyring_kms::ClientSettings;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const WEST: &str = "us-west-2";
pub const EAST: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

/// Whether this is a CI run: `CI` is set to something other than empty, `false` or `0` (the
/// rule every test crate of the workspace uses).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The emulator's endpoint from `AWS_ENDPOINT_URL`. Unset: panics under CI, otherwise
/// prints a loud SKIP and returns `None`. A non-loopback endpoint always panics: these tests
/// create keys and must never reach a real AWS account.
pub fn endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => {
            let host = url
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split([':', '/']).next())
                .unwrap_or_default();
            assert!(
                matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
                "AWS_ENDPOINT_URL={url} is not a loopback address; the KMS tests only run against a local emulator"
            );
            Some(url)
        }
        _ => {
            assert!(
                !ci(),
                "AWS_ENDPOINT_URL is not set, but CI is: the KMS tests need the moto emulator. \
                 Run them with `cargo xtask moto cargo test -p keyring-kms`."
            );
            eprintln!(
                "\n*** SKIP: AWS_ENDPOINT_URL is not set, so this KMS emulator test did NOT run. \
                 Run `cargo xtask moto cargo test -p keyring-kms` to start moto and run it. ***\n"
            );
            None
        }
    }
}

/// Return early from a test when the emulator is absent (outside CI).
#[macro_export]
macro_rules! emulator_or_skip {
    () => {
        match $crate::common::endpoint() {
            Some(e) => e,
            None => return,
        }
    };
}

/// Settings that keep fault tests short.
pub fn fast_settings() -> ClientSettings {
    ClientSettings {
        connect_timeout: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(5),
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        adaptive: false,
    }
}

/// A client for `region` at `endpoint` with dummy credentials and `settings`.
pub fn client_at(endpoint: &str, region: &str, settings: &ClientSettings) -> Client {
    let builder = aws_sdk_kms::config::Builder::new()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(endpoint);
    Client::from_conf(settings.apply(builder).build())
}

/// A client for `region` at the emulator.
pub fn client(endpoint: &str, region: &str) -> Client {
    client_at(endpoint, region, &ClientSettings::default())
}

/// A new symmetric key; returns its ARN.
pub async fn symmetric_key(c: &Client) -> String {
    let out = c.create_key().send().await.expect("CreateKey");
    out.key_metadata()
        .expect("metadata")
        .arn()
        .expect("arn")
        .to_owned()
}

/// A new multi-Region key in `c`'s region; returns its ARN.
pub async fn mrk(c: &Client) -> String {
    let out = c
        .create_key()
        .multi_region(true)
        .send()
        .await
        .expect("CreateKey multi-region");
    out.key_metadata()
        .expect("metadata")
        .arn()
        .expect("arn")
        .to_owned()
}

/// Replicate `arn` into `region`; returns the replica's ARN.
pub async fn replicate(c: &Client, arn: &str, region: &str) -> String {
    let out = c
        .replicate_key()
        .key_id(arn)
        .replica_region(region)
        .send()
        .await
        .expect("ReplicateKey");
    out.replica_key_metadata()
        .expect("replica metadata")
        .arn()
        .expect("arn")
        .to_owned()
}

/// A new RSA encryption key; returns its ARN.
pub async fn rsa_key(c: &Client, spec: KeySpec) -> String {
    let out = c
        .create_key()
        .key_spec(spec)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .send()
        .await
        .expect("CreateKey RSA");
    out.key_metadata()
        .expect("metadata")
        .arn()
        .expect("arn")
        .to_owned()
}

/// A request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The `X-Amz-Target` header (`TrentService.Decrypt`, ...).
    pub target: String,
    /// The JSON body.
    pub body: String,
}

#[derive(Default)]
struct ProxyState {
    seen: Mutex<Vec<Seen>>,
    throttle: AtomicUsize,
    blackhole: AtomicBool,
    rewrite: Mutex<Option<(String, String)>>,
    plaintext: Mutex<Option<Vec<u8>>>,
    delay_ms: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// An HTTP/1.1 proxy in front of the emulator, running on the test's runtime: records
/// requests, and on demand throttles, swallows requests (never answers), rewrites response
/// bodies (key ids, or the data key itself), or stops listening (connection refused).
pub struct KmsProxy {
    pub url: String,
    state: Arc<ProxyState>,
    accept: JoinHandle<()>,
}

impl KmsProxy {
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(ProxyState::default());
        let st = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, &upstream, &st).await;
                });
            }
        });
        Self { url, state, accept }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Answer the next `n` requests with HTTP 400 ThrottlingException.
    pub fn throttle_next(&self, n: usize) {
        self.state.throttle.store(n, Ordering::SeqCst);
    }

    /// Accept requests but never answer them.
    pub fn blackhole(&self, on: bool) {
        self.state.blackhole.store(on, Ordering::SeqCst);
    }

    /// Replace `from` by `to` (same length) in every response body.
    pub fn rewrite(&self, from: &str, to: &str) {
        assert_eq!(from.len(), to.len(), "rewrites keep Content-Length valid");
        *self.state.rewrite.lock().unwrap() = Some((from.to_owned(), to.to_owned()));
    }

    /// Replace the `Plaintext` (the data key) of every response that has one by `key`
    /// (base64-encoded, as KMS sends it), or stop replacing it with `None`.
    pub fn replace_plaintext(&self, key: Option<&[u8]>) {
        *self.state.plaintext.lock().unwrap() = key.map(<[u8]>::to_vec);
    }

    /// Hold every request this long before forwarding it.
    pub fn delay(&self, d: Duration) {
        let ms = usize::try_from(d.as_millis()).unwrap_or(usize::MAX);
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// The largest number of requests that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Stop listening: new connections are refused, as if the emulator had stopped.
    pub async fn stop(&self) {
        self.accept.abort();
        // Wait until the listener is really closed.
        while TcpStream::connect(self.url.trim_start_matches("http://"))
            .await
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for KmsProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Read one HTTP request or response: head and `Content-Length` body.
async fn read_message(conn: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some((head, body)))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Replace the `Connection` header (or add one) so each exchange uses its own connection.
fn with_connection_close(head: &str) -> String {
    let mut out: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    out.push("Connection: close");
    out.join("\r\n") + "\r\n\r\n"
}

async fn serve(mut client: TcpStream, upstream: &str, st: &ProxyState) -> std::io::Result<()> {
    while let Some((head, body)) = read_message(&mut client).await? {
        st.seen.lock().unwrap().push(Seen {
            target: header(&head, "x-amz-target").unwrap_or_default().to_owned(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        if st.blackhole.load(Ordering::SeqCst) {
            // Hold the connection open and never answer.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(());
        }
        let throttled = st
            .throttle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let response = if throttled {
            let body = br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
            let mut r = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: ThrottlingException\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(body);
            r
        } else {
            let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            st.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let delay = st.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay as u64)).await;
            }
            let forwarded = forward(upstream, &head, &body, st).await;
            st.in_flight.fetch_sub(1, Ordering::SeqCst);
            match forwarded? {
                Some(r) => r,
                None => return Ok(()),
            }
        };
        client.write_all(&response).await?;
    }
    Ok(())
}

async fn forward(
    upstream: &str,
    head: &str,
    body: &[u8],
    st: &ProxyState,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(with_connection_close(head).as_bytes()).await?;
    up.write_all(body).await?;
    let Some((rhead, mut rbody)) = read_message(&mut up).await? else {
        return Ok(None);
    };
    if let Some((from, to)) = st.rewrite.lock().unwrap().clone() {
        rbody = String::from_utf8_lossy(&rbody)
            .replace(&from, &to)
            .into_bytes();
    }
    let mut rhead = rhead;
    if let Some(key) = st.plaintext.lock().unwrap().clone() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(key);
        let text = String::from_utf8_lossy(&rbody).into_owned();
        if let Some(replaced) = replace_json_string(&text, "Plaintext", &encoded) {
            rbody = replaced.into_bytes();
            rhead = with_content_length(&rhead, rbody.len());
        }
    }
    let mut r = with_connection_close(&rhead).into_bytes();
    r.extend_from_slice(&rbody);
    Ok(Some(r))
}

/// `json` with the string value of its top-level member `field` replaced by `value` (KMS's
/// response members are flat and their base64 values need no escaping); `None` if `json`
/// has no such member.
fn replace_json_string(json: &str, field: &str, value: &str) -> Option<String> {
    let key = format!("\"{field}\"");
    let after_key = json.find(&key)? + key.len();
    let colon = after_key + json[after_key..].find(':')?;
    if !json[after_key..colon].trim().is_empty() {
        return None;
    }
    let open = colon + 1 + json[colon + 1..].find('"')?;
    if !json[colon + 1..open].trim().is_empty() {
        return None;
    }
    let close = open + 1 + json[open + 1..].find('"')?;
    Some(format!("{}{value}{}", &json[..=open], &json[close..]))
}

/// Set the `Content-Length` header of a response head to `len`.
fn with_content_length(head: &str, len: usize) -> String {
    let mut out: Vec<String> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .map(str::to_owned)
        .collect();
    out.push(format!("Content-Length: {len}"));
    out.join("\r\n") + "\r\n\r\n"
}
