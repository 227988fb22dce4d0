//! Shared helpers: credentials, a client wired to a mock server, header matchers, a raw
//! concurrency-counting HTTP server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use autotask_client::{AutotaskClient, Credentials, Pacing, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockBuilder, MockServer};

pub(crate) const USER: &str = "api@sim.local";
pub(crate) const SECRET: &str = "sim-secret-9f8e7d";
pub(crate) const CODE: &str = "SIMINTEGRATIONCODE000000000";

pub(crate) fn credentials() -> Credentials {
    Credentials::new(USER, SECRET, CODE)
}

/// A client pointed at `base` with tiny retry delays, no pacing and no threshold polling.
pub(crate) fn client_for(base: &str) -> AutotaskClient {
    builder_for(base).build().expect("client builds")
}

pub(crate) fn builder_for(base: &str) -> autotask_client::ClientBuilder {
    AutotaskClient::builder(credentials())
        .base_url(base)
        .retry(RetryPolicy::fast())
        .pacing(Pacing::NONE)
        .threshold_refresh(None)
        .timeout(Duration::from_secs(5))
}

pub(crate) fn client(server: &MockServer) -> AutotaskClient {
    client_for(&server.uri())
}

/// `method` + `/ATServicesRest/V1.0/{p}` + the three auth headers.
pub(crate) fn api(m: &str, p: &str) -> MockBuilder {
    Mock::given(method(m))
        .and(path(format!("/ATServicesRest/V1.0/{p}")))
        .and(header("ApiIntegrationCode", CODE))
        .and(header("UserName", USER))
        .and(header("Secret", SECRET))
        .and(header("Content-Type", "application/json"))
}

/// In-flight counters of [`counting_server`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) in_flight: AtomicUsize,
    pub(crate) max_in_flight: AtomicUsize,
    pub(crate) total: AtomicUsize,
}

/// A minimal HTTP/1.1 server (keep-alive) that holds every request for `hold` and answers
/// `body`, counting requests in flight. Returns its base URL.
pub(crate) async fn counting_server(hold: Duration, body: &'static str) -> (String, Arc<Counters>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let counters = Arc::new(Counters::default());
    let c = Arc::clone(&counters);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // read one request: head, then Content-Length bytes of body
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + len);
                    let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    c.max_in_flight.fetch_max(now, Ordering::SeqCst);
                    c.total.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(hold).await;
                    c.in_flight.fetch_sub(1, Ordering::SeqCst);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
                        body.len(),
                        body
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), counters)
}

/// Captured log output of the current thread (`#[tokio::test]` runs on one thread).
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures WARN and above until the guard drops.
pub(crate) fn capture_warnings() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let w = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}
