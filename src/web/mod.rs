//! The web app: server-rendered pages (askama templates in
//! `src/web/templates`, checked at compile time), a small stylesheet and
//! htmx vendored under `src/web/static` and embedded in the binary, a cookie
//! session and CSRF protection (`session`). Pages call the same domain
//! functions as the API, so authorization is written once; every page works
//! with JavaScript off.

pub mod admin;
pub mod answers;
pub mod chat;
pub mod conduct;
pub mod earnings;
pub mod github;
pub mod handovers;
pub mod invoices;
pub mod moderation;
pub mod pages;
pub mod plans;
pub mod session;
pub mod team;

use crate::error::AppError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;

/// Registers the pages and the static files.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{file}", web::get().to(static_file))
        .service(
            web::scope("")
                .wrap(actix_web::middleware::from_fn(session::layer))
                .route("/", web::get().to(pages::home))
                .route("/search", web::get().to(pages::search))
                .route("/login", web::get().to(pages::login_form))
                .route("/login", web::post().to(pages::login))
                .route("/register", web::get().to(pages::register_form))
                .route("/register", web::post().to(pages::register))
                .route("/logout", web::post().to(pages::logout))
                .route("/admin/audit", web::get().to(admin::audit))
                .route("/chat/link", web::get().to(chat::link_form))
                .route("/chat/link", web::post().to(chat::link))
                .route("/me/chat/unlink", web::post().to(chat::unlink))
                .route("/auth/github", web::get().to(github::start))
                .route("/auth/github/callback", web::get().to(github::callback))
                .route(
                    "/p/{slug}/github/link",
                    web::get().to(github::link_repository),
                )
                .route("/p/{slug}", web::get().to(pages::project))
                .route("/t/{id}", web::get().to(pages::ticket))
                .route("/t/{id}/{action}", web::post().to(pages::ticket_action))
                .route("/me", web::get().to(pages::me))
                .route("/me/payouts", web::post().to(pages::payouts))
                .route(
                    "/me/verify-email",
                    web::post().to(pages::resend_verification),
                )
                .route(
                    "/me/notifications",
                    web::get().to(pages::notifications_form),
                )
                .route(
                    "/me/notifications",
                    web::post().to(pages::save_notifications),
                )
                .route("/unsubscribe", web::get().to(pages::unsubscribe_form))
                .route("/unsubscribe", web::post().to(pages::unsubscribe))
                .route("/verify", web::get().to(pages::verify_form))
                .route("/verify", web::post().to(pages::verify))
                .route("/payouts/return", web::get().to(pages::payouts_back))
                .route("/payouts/refresh", web::get().to(pages::payouts_back))
                .route("/new/similar", web::get().to(answers::similar_fragment))
                .route("/u/{id}", web::get().to(pages::user))
                .route("/p/{slug}/badge.svg", web::get().to(pages::badge))
                .route("/p/{slug}/apply", web::get().to(pages::apply_form))
                .route("/p/{slug}/apply", web::post().to(pages::apply))
                .route("/projects/new", web::get().to(team::new_project_form))
                .route("/projects/new", web::post().to(team::new_project))
                .route("/p/{slug}/queue", web::get().to(team::queue_page))
                .route("/p/{slug}/helpers", web::get().to(team::helpers_list))
                .route(
                    "/p/{slug}/helpers/{user_id}/{action}",
                    web::post().to(team::helper_action),
                )
                .route("/p/{slug}/settings", web::get().to(team::settings))
                .route("/p/{slug}/settings", web::post().to(team::save_settings))
                .route("/p/{slug}/templates", web::post().to(team::add_template))
                .route("/p/{slug}/calendar", web::post().to(team::save_calendar))
                .route("/p/{slug}/plans", web::get().to(plans::plans_index))
                .route("/p/{slug}/plans", web::post().to(plans::publish))
                .route(
                    "/p/{slug}/upgrade-price",
                    web::post().to(plans::set_upgrade_price),
                )
                .route("/p/{slug}/subscribe", web::post().to(plans::subscribe))
                .route("/me/subscriptions", web::get().to(plans::mine))
                .route("/me/floss", web::get().to(plans::floss))
                .route("/me/invoices", web::get().to(invoices::mine))
                .route("/p/{slug}/flags", web::get().to(moderation::queue))
                .route(
                    "/p/{slug}/flags/{id}/{action}",
                    web::post().to(moderation::review),
                )
                .route("/p/{slug}/bans", web::post().to(moderation::ban))
                .route(
                    "/p/{slug}/bans/{user_id}/lift",
                    web::post().to(moderation::lift),
                )
                .route("/me/billing", web::post().to(invoices::save_billing))
                .route("/invoices/{id}", web::get().to(invoices::show))
                .route("/invoices/{id}/pdf", web::get().to(invoices::pdf))
                .route("/me/floss/github", web::get().to(github::floss_start))
                .route(
                    "/me/subscriptions/{id}/consulting",
                    web::post().to(plans::book_consulting),
                )
                .route(
                    "/me/consulting/{id}/cancel",
                    web::post().to(plans::cancel_consulting),
                )
                .route(
                    "/p/{slug}/consulting",
                    web::get().to(plans::consulting_page),
                )
                .route(
                    "/p/{slug}/consulting/{id}/{action}",
                    web::post().to(plans::decide_consulting),
                )
                .route("/admin/appeals", web::get().to(moderation::admin_appeals))
                .route("/admin/flags", web::get().to(moderation::admin_flags))
                .route("/admin/bans", web::post().to(moderation::admin_ban))
                .route(
                    "/appeals/{id}/{action}",
                    web::post().to(moderation::decide_appeal),
                )
                .route("/code-of-conduct", web::get().to(conduct::page))
                .route("/code-of-conduct/accept", web::post().to(conduct::accept))
                .route("/admin/code-of-conduct", web::post().to(conduct::publish))
                .route("/me/earnings", web::get().to(earnings::page))
                .route("/me/earnings.csv", web::get().to(earnings::csv))
                .route("/p/{slug}/handover", web::get().to(handovers::project_page))
                .route("/p/{slug}/handover", web::post().to(handovers::propose))
                .route("/handovers/{id}", web::get().to(handovers::page))
                .route(
                    "/handovers/{id}/github",
                    web::get().to(github::handover_start),
                )
                .route("/handovers/{id}/{action}", web::post().to(handovers::act))
                .route(
                    "/me/subscriptions/{id}/cancel",
                    web::post().to(plans::cancel),
                )
                .route("/p/{slug}/dashboard", web::get().to(team::dashboard_page))
                .route(
                    "/p/{slug}/statement.{format}",
                    web::get().to(team::statement),
                )
                .route("/new", web::get().to(pages::new_ticket_form))
                .route("/new", web::post().to(pages::new_ticket))
                .default_service(web::to(pages::not_found)),
        );
}

/// The vendored files, embedded in the binary: (name, content type, bytes).
const STATIC: &[(&str, &str, &[u8])] = &[
    (
        "guildhall.css",
        "text/css; charset=utf-8",
        include_bytes!("static/guildhall.css"),
    ),
    (
        "pay.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/pay.js"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/htmx.min.js"),
    ),
];

async fn static_file(file: web::Path<String>) -> HttpResponse {
    match STATIC.iter().find(|(name, _, _)| *name == file.as_str()) {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header(("cache-control", "public, max-age=86400"))
            .body(*bytes),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found"),
    }
}

/// What every page's layout shows: who is signed in and the CSRF token
/// its forms carry.
pub struct Layout {
    /// The signed-in user, if any.
    pub user: Option<NavUser>,
    /// The token every form posts back.
    pub csrf: String,
    /// Whether money here is the sandbox's test money.
    pub test_money: bool,
}

/// The signed-in user as the navigation shows them.
pub struct NavUser {
    /// Id.
    pub id: i64,
    /// Display name.
    pub name: String,
}

impl Layout {
    /// The layout of a request (after the session layer), loading the
    /// user's name.
    pub async fn of(state: &AppState, req: &HttpRequest) -> Result<Layout, WebError> {
        let s = session::Session::of(req);
        let user = match s.user_id {
            Some(id) => {
                let u = state
                    .db(move |conn| crate::domain::users::get(conn, id))
                    .await?;
                Some(NavUser {
                    id,
                    name: u.display_name,
                })
            }
            None => None,
        };
        Ok(Layout {
            user,
            csrf: s.csrf,
            test_money: state.gateway.test_money(),
        })
    }
}

/// The pages' Content-Security-Policy: nothing inline, nothing from
/// elsewhere (the card page adds Stripe.js's origin).
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'";

/// `?notice=`: which message a page shows after a form sent the browser
/// back to it.
#[derive(Debug, serde::Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    pub notice: String,
}

/// A form that carries only its CSRF token.
#[derive(Debug, serde::Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    pub csrf: String,
}

/// Renders a page with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, WebError> {
    let html = page
        .render()
        .map_err(|e| WebError(AppError::internal(anyhow::anyhow!("template: {e}"))))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("referrer-policy", "same-origin"))
        .insert_header(("content-security-policy", CSP))
        .body(html))
}

/// Currencies without minor units.
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "isk", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd",
    "vuv", "xaf", "xof", "xpf",
];

fn zero_decimal(currency: &str) -> bool {
    ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str())
}

/// An amount people typed in major units ("50", "50.5", "50.00") as minor
/// units; `None` for anything else (negative, more decimals than the
/// currency has, not a number, too large).
pub fn parse_money(text: &str, currency: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let places = if zero_decimal(currency) { 0 } else { 2 };
    if whole.is_empty()
        || text.ends_with('.')
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > places
        || (places == 0 && text.contains('.'))
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    whole
        .checked_mul(10_i64.pow(places as u32))?
        .checked_add(frac)
}

/// An amount in major units with its currency, e.g. `50.00 USD` (no
/// decimals for currencies that have none, e.g. `1500 JPY`).
pub fn money(amount: i64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    if zero_decimal(currency) {
        return format!("{amount} {code}");
    }
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    format!("{sign}{}.{:02} {code}", abs / 100, abs % 100)
}

/// A failed page: rendered as an HTML page with the error's status and a
/// way back, never JSON.
#[derive(Debug)]
pub struct WebError(pub AppError);

impl WebError {
    /// 403 with a reason a person can act on.
    pub fn forbidden(why: &'static str) -> WebError {
        WebError(AppError::forbidden(why))
    }
}

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        WebError(e)
    }
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Template)]
#[template(path = "error.html", config = "src/web/askama.toml")]
struct ErrorPage {
    l: Layout,
    title: String,
    detail: String,
    back: String,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Internal(e) = &self.0 {
            tracing::error!(error = %format!("{e:#}"), "page failed with an internal error");
        }
        let status = self.status_code();
        let detail = match &self.0 {
            AppError::Internal(_) => "Something went wrong on our side. Please try again.".into(),
            AppError::NotFound(_) => "There is nothing here, or you may not see it.".into(),
            AppError::Unavailable => "Guildhall is busy; please try again in a moment.".into(),
            AppError::Validation(errors) => errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        let page = ErrorPage {
            l: Layout {
                user: None,
                csrf: String::new(),
                test_money: false,
            },
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            detail,
            back: "/".into(),
        };
        let mut res = render(status, &page).unwrap_or_else(|_| {
            HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(status.to_string())
        });
        if let AppError::TooManyRequests {
            retry_after_secs, ..
        } = &self.0
        {
            if let Ok(v) = retry_after_secs.to_string().parse() {
                res.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, v);
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_in_major_units() {
        assert_eq!(money(5_000, "usd"), "50.00 USD");
        assert_eq!(money(999, "eur"), "9.99 EUR");
        assert_eq!(money(-5, "usd"), "-0.05 USD");
        assert_eq!(money(1_500, "jpy"), "1500 JPY");
        assert_eq!(parse_money("50", "usd"), Some(5_000));
        assert_eq!(parse_money(" 50.5 ", "usd"), Some(5_050));
        assert_eq!(parse_money("0.07", "usd"), Some(7));
        assert_eq!(parse_money("1500", "jpy"), Some(1_500));
        for bad in [
            "",
            "-5",
            "5.001",
            "abc",
            "1e3",
            "5.",
            "99999999999999999999",
        ] {
            assert_eq!(parse_money(bad, "usd"), None, "{bad}");
        }
        assert_eq!(parse_money("15.5", "jpy"), None);
    }
}
