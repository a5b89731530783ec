//! The client side of the framework crates' HTTP tests (feature `http`): one request over
//! loopback with an optional raw `Cookie` header, and what came back, `Set-Cookie` headers
//! parsed. Tests of session-tower and session-actix drive their servers through it, so
//! both frameworks are checked with the same client.

use std::net::SocketAddr;

use cookie::Cookie;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde::de::DeserializeOwned;

/// One reply: status, body and the `Set-Cookie` headers.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: StatusCode,
    /// The body as text.
    pub body: String,
    /// Every `Set-Cookie` header, parsed.
    pub set_cookies: Vec<Cookie<'static>>,
}

impl Reply {
    /// The cookie `name` the reply set, if any.
    pub fn cookie(&self, name: &str) -> Option<&Cookie<'static>> {
        self.set_cookies.iter().find(|c| c.name() == name)
    }

    /// The value of the cookie `name` the reply set, if any (`""`: a removal).
    pub fn cookie_value(&self, name: &str) -> Option<&str> {
        self.cookie(name).map(Cookie::value)
    }

    /// The body as JSON; a body that is not `T` fails the test, showing the body.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// Sends `method` (`GET`; anything else is a `POST`) to `path` on `addr`, with `cookie` as
/// the raw `Cookie` header. A server that does not answer, or a `Set-Cookie` header that is
/// not a cookie, fails the test.
pub async fn send(method: &str, addr: SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}{path}");
    let mut req = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    if let Some(cookie) = cookie {
        req = req.header(COOKIE, cookie);
    }
    let res = req.send().await.expect("the server answers");
    let status = res.status();
    let set_cookies = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().expect("a Set-Cookie header in text");
            Cookie::parse(text.to_owned()).expect("a Set-Cookie header that is a cookie")
        })
        .collect();
    let body = res.text().await.expect("a body");
    Reply {
        status,
        body,
        set_cookies,
    }
}
