//! Assembles the actix application: state, middleware, extractor limits.

use crate::api;
use crate::auth::ratelimit::FailureLimiter;
use crate::auth::tokens::TokenService;
use crate::config::Config;
use crate::db::DbPool;
use crate::error::{json_error, path_error, query_error};
use crate::metrics::Metrics;
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, Error};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Builds the shared state from configuration and a pool.
pub fn state(config: Config, pool: DbPool) -> anyhow::Result<AppState> {
    let index = Arc::new(
        guildhall_index::TicketIndex::open_or_create(&config.index_dir()).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the search index in {}: {e}",
                config.index_dir().display()
            )
        })?,
    );
    state_with_index(config, pool, index)
}

/// Builds the shared state around an already opened index.
pub fn state_with_index(
    config: Config,
    pool: DbPool,
    index: Arc<guildhall_index::TicketIndex>,
) -> anyhow::Result<AppState> {
    let key = config.jwt_key()?;
    let tokens = TokenService::new(
        &key,
        &config.jwt_issuer,
        &config.jwt_audience,
        config.access_token_ttl,
        config.refresh_token_ttl,
    );
    let gateway = crate::payments::from_config(&config)?;
    let mail = Arc::new(crate::mail::Mail::from_config(&config)?);
    let github = crate::jobs::github_app(&config)?;
    let github_oauth = config.github_oauth.as_ref().map(|(id, secret)| {
        Arc::new(crate::integrations::github::OAuthApp::new(
            &config.github_api_base,
            id,
            crate::config::Secret(secret.0.clone()),
        ))
    });
    Ok(AppState {
        mail,
        github,
        github_oauth,
        pool,
        login_failures: Arc::new(FailureLimiter::new(config.login_window)),
        registrations: Arc::new(FailureLimiter::new(std::time::Duration::from_secs(3600))),
        config: Arc::new(config),
        tokens: Arc::new(tokens),
        metrics: Arc::new(Metrics::default()),
        index,
        gateway,
        hashing: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism()
                .map(|n| n.get() * 2)
                .unwrap_or(4),
        )),
    })
}

/// The application: routes, body limits, problem+json for extractor errors,
/// and the request-id / logging / metrics middleware.
pub fn build(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let limit = state.config.body_limit_bytes;
    let metrics = state.metrics.clone();
    App::new()
        .app_data(web::Data::new(state))
        .app_data(
            web::JsonConfig::default()
                .limit(limit)
                .error_handler(move |e, _| json_error(e, limit).into()),
        )
        .app_data(web::PayloadConfig::new(limit))
        .app_data(web::QueryConfig::default().error_handler(|e, _| query_error(e).into()))
        .app_data(web::PathConfig::default().error_handler(|e, _| path_error(e).into()))
        .configure(api::configure)
        .configure(crate::web::configure)
        .default_service(web::to(api::not_found))
        .wrap_fn(move |req, srv| {
            use actix_web::dev::Service as _;
            let request_id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| {
                    !v.is_empty()
                        && v.len() <= 64
                        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
                .map(str::to_owned)
                .unwrap_or_else(|| crate::auth::tokens::random_token(12));
            // Known methods only: arbitrary method names must not grow the metrics.
            let method = match req.method().as_str() {
                m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => {
                    m.to_owned()
                }
                _ => "OTHER".to_owned(),
            };
            let path = req.path().to_owned();
            let route = req
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned());
            let span = tracing::info_span!("request", id = %request_id, %method, %path);
            let started = Instant::now();
            let fut = srv.call(req);
            let metrics = metrics.clone();
            async move {
                let mut res = fut.await?;
                let status = res.status().as_u16();
                let elapsed = started.elapsed();
                metrics.observe(&method, &route, status, elapsed);
                tracing::info!(
                    status,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "request finished"
                );
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    res.headers_mut()
                        .insert(HeaderName::from_static("x-request-id"), v);
                }
                Ok(res)
            }
            .instrument(span)
        })
}
