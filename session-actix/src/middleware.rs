//! The actix-web middleware: a [`RequestSession`] per request, finished with the response.

use std::future::{Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, ContentType, HeaderValue};
use actix_web::{HttpMessage, HttpResponse};
use session_core::SessionStore;
use session_http::{RequestSession, SessionConfig};

use crate::error::status;
use crate::extract::Session;

/// An actix-web middleware that gives every request a [`Session`] and saves the request's
/// changes when the response is produced: its cookie, and under
/// [`SaveFailure::Fail`](session_http::SaveFailure::Fail) an error response in place of the
/// handler's when the changes were not saved.
///
/// ```
/// use actix_web::{App, web};
/// use session_actix::{Key, SessionConfig, SessionMiddleware};
/// use session_core::MemoryStore;
///
/// let config = SessionConfig::new(MemoryStore::new())
///     .cookie_name("sid")
///     .private(Key::generate());
/// let app = App::new()
///     .wrap(SessionMiddleware::from(config))
///     .route("/", web::get().to(|| async { "hello" }));
/// ```
#[derive(Debug, Clone)]
pub struct SessionMiddleware {
    config: Arc<SessionConfig>,
}

impl SessionMiddleware {
    /// A middleware over `store` (by value, or shared: an `Arc<S>` or an
    /// `Arc<dyn SessionStore>` is a store too) with the default [`SessionConfig`].
    pub fn new(store: impl SessionStore + 'static) -> Self {
        SessionMiddleware::from(SessionConfig::new(store))
    }
}

impl From<SessionConfig> for SessionMiddleware {
    fn from(config: SessionConfig) -> Self {
        SessionMiddleware {
            config: Arc::new(config),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionService {
            service: Rc::new(service),
            config: self.config.clone(),
        }))
    }
}

/// The service made by [`SessionMiddleware`].
#[derive(Debug)]
pub struct SessionService<S> {
    service: Rc<S>,
    config: Arc<SessionConfig>,
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let cookies = req.headers().get_all(header::COOKIE);
        let session = RequestSession::start(&self.config, cookies.filter_map(|v| v.to_str().ok()));
        req.extensions_mut().insert(Session::new(session.clone()));
        let service = self.service.clone();
        Box::pin(async move {
            match service.call(req).await {
                Ok(response) => Ok(finish(session, response).await),
                Err(error) => {
                    // An error no handler turned into a response (an inner middleware's):
                    // nothing deferred is saved, as after a server error. The request is
                    // gone with it, so no response can carry a cookie: a session an
                    // `update` created stays unknown to the client (and expires idle), and
                    // the cookie of a `delete`d one goes at its next request.
                    session.finish(true).await;
                    Err(error)
                }
            }
        })
    }
}

/// Writes what the end of the request decided ([`RequestSession::finish`]) into the
/// response.
async fn finish<B>(
    session: RequestSession,
    response: ServiceResponse<B>,
) -> ServiceResponse<EitherBody<B>> {
    let failed = response.status().is_server_error();
    let finished = session.finish(failed).await;
    let mut response = match finished.replacement() {
        Some((code, body)) => {
            let (req, _) = response.into_parts();
            let replacement = HttpResponse::build(status(code))
                .content_type(ContentType::plaintext())
                .body(body);
            ServiceResponse::new(req, replacement).map_into_right_body()
        }
        None => response.map_into_left_body(),
    };
    append_cookies(&mut response, finished.set_cookies);
    response
}

/// Appends `Set-Cookie` headers, marked sensitive (they hold tokens).
fn append_cookies<B>(response: &mut ServiceResponse<B>, cookies: Vec<String>) {
    for cookie in cookies {
        match HeaderValue::from_str(&cookie) {
            Ok(mut value) => {
                value.set_sensitive(true);
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(_) => tracing::error!("session cookie is not a valid header value"),
        }
    }
}
