//! The web app through HTTP as a browser without JavaScript uses it: pages,
//! forms with their CSRF tokens, the session cookie. (The real-browser tests
//! come with the rest of the pages.)

use crate::util::{Resp, TestApp, PASSWORD};
use actix_web::test::TestRequest;
use std::collections::HashMap;

/// A cookie jar and the app's service: what a browser keeps between pages.
struct Browser<'a, S> {
    app: &'a TestApp,
    svc: S,
    jar: HashMap<String, String>,
}

impl<'a, S, B> Browser<'a, S>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    fn with_cookies(&self, mut req: TestRequest) -> TestRequest {
        for (k, v) in &self.jar {
            req = req.cookie(actix_web::cookie::Cookie::new(k.clone(), v.clone()));
        }
        req.peer_addr("10.9.9.9:1".parse().unwrap())
    }

    fn keep(&mut self, r: &Resp) {
        for v in r.headers.get_all("set-cookie") {
            let c = actix_web::cookie::Cookie::parse(v.to_str().unwrap().to_owned()).unwrap();
            if c.max_age().is_some_and(|a| a.is_zero()) || c.value().is_empty() {
                self.jar.remove(c.name());
            } else {
                self.jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
    }

    async fn get(&mut self, path: &str) -> Resp {
        let req = self.with_cookies(TestRequest::get().uri(path));
        let r = self.app.send(&self.svc, req).await;
        self.keep(&r);
        r
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let req = self.with_cookies(
            TestRequest::post()
                .uri(path)
                .insert_header(("origin", "http://127.0.0.1:8080"))
                .set_form(form.iter().copied().collect::<HashMap<_, _>>()),
        );
        let r = self.app.send(&self.svc, req).await;
        self.keep(&r);
        r
    }
}

/// The CSRF token the page's forms carry.
fn csrf(page: &Resp) -> String {
    let at = page
        .text
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page.text[at..].split('"').next().unwrap().to_owned()
}

#[actix_web::test]
async fn pages_forms_sessions_and_their_protections() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    app.project(&owner, "proj").await;
    let private = app
        .open_ticket(
            &owner,
            "proj",
            "<script>alert(1)</script> secret",
            "private",
        )
        .await;
    let public = app
        .open_ticket(&owner, "proj", "<script>alert(2)</script> public", "public")
        .await;
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut b = Browser {
        app: &app,
        svc,
        jar: HashMap::new(),
    };

    // The start page: HTML, the projects, a CSRF cookie with its flags.
    let home = b.get("/").await.expect(200);
    assert!(home
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(home.text.contains("href=\"/p/proj\""), "{}", home.text);
    let set: Vec<String> = home
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let csrf_cookie = set.iter().find(|c| c.starts_with("gh_csrf=")).unwrap();
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"),
        "{csrf_cookie}"
    );
    // Unknown pages are pages; unknown API paths stay problem+json.
    let missing = b.get("/no/such/page").await.expect(404);
    assert!(
        missing.text.contains("<h1>Not Found</h1>"),
        "{}",
        missing.text
    );
    let api = b.get("/api/v1/no-such-thing").await.expect(404);
    assert_eq!(
        api.header("content-type").as_deref(),
        Some("application/problem+json")
    );

    // A form without its token, or from another site, changes nothing.
    let form = b.get("/register").await.expect(200);
    let token = csrf(&form);
    let fields = |t: &'static str| {
        [
            ("email", "web@example.com"),
            ("password", PASSWORD),
            ("display_name", "Web User"),
            ("csrf", t),
        ]
    };
    b.post("/register", &fields("wrong")).await.expect(403);
    let req = b.with_cookies(
        TestRequest::post()
            .uri("/register")
            .insert_header(("origin", "https://evil.example"))
            .set_form(
                [
                    ("email", "web@example.com"),
                    ("password", PASSWORD),
                    ("display_name", "Web User"),
                    ("csrf", token.as_str()),
                ]
                .into_iter()
                .collect::<HashMap<_, _>>(),
            ),
    );
    app.send(&b.svc, req).await.expect(403);
    {
        use diesel::prelude::*;
        use guildhall::db::schema::users;
        let n: i64 = users::table
            .filter(users::email.eq("web@example.com"))
            .count()
            .get_result(&mut app.conn())
            .unwrap();
        assert_eq!(n, 0, "nothing was written");
    }
    // Errors come back inline, from the API's validation.
    let short = b
        .post(
            "/register",
            &[
                ("email", "web@example.com"),
                ("password", "short"),
                ("display_name", "Web User"),
                ("csrf", token.as_str()),
            ],
        )
        .await
        .expect(422);
    assert!(
        short.text.contains("at least 12 characters"),
        "{}",
        short.text
    );

    // Registering signs in with a session cookie.
    let token = csrf(&short);
    let done = b
        .post(
            "/register",
            &[
                ("email", "web@example.com"),
                ("password", PASSWORD),
                ("display_name", "Web User"),
                ("csrf", token.as_str()),
            ],
        )
        .await
        .expect(303);
    let session = done
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("gh_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.contains("Path=/")
    );
    assert!(!session.contains("Secure"), "http public URL: not Secure");
    let home = b.get("/").await.expect(200);
    assert!(home.text.contains("Web User"), "signed in");

    // Text people typed is text.
    let page = b.get(&format!("/t/{public}")).await.expect(200);
    assert!(
        page.text.contains("&#60;script&#62;alert(2)")
            || page.text.contains("&lt;script&gt;alert(2)")
    );
    assert!(!page.text.contains("<script>alert(2)"));
    // A private ticket is not there for someone else.
    b.get(&format!("/t/{private}")).await.expect(404);
    let _ = stranger;

    // Signing out ends the session: the old cookie is dead everywhere.
    let old = b.jar.get("gh_session").cloned().unwrap();
    let token = csrf(&home);
    b.post("/logout", &[("csrf", token.as_str())])
        .await
        .expect(303);
    let home = b.get("/").await.expect(200);
    assert!(home.text.contains("Sign in") && !home.text.contains("Web User"));
    b.jar.insert("gh_session".into(), old);
    let replay = b.get("/").await.expect(200);
    assert!(
        !replay.text.contains("Web User"),
        "a revoked session does not come back"
    );

    // Signing in again through the form.
    let form = b.get("/login").await.expect(200);
    let token = csrf(&form);
    let wrong = b
        .post(
            "/login",
            &[
                ("email", "web@example.com"),
                ("password", "not the password"),
                ("csrf", token.as_str()),
            ],
        )
        .await
        .expect(401);
    assert!(wrong.text.contains("invalid email or password"));
    let token = csrf(&wrong);
    let ok = b
        .post(
            "/login",
            &[
                ("email", "web@example.com"),
                ("password", PASSWORD),
                ("csrf", token.as_str()),
                ("next", "https://evil.example/"),
            ],
        )
        .await
        .expect(303);
    assert_eq!(
        ok.header("location").as_deref(),
        Some("/"),
        "no open redirect"
    );
    let project = b.get("/p/proj").await.expect(200);
    assert!(project.text.contains("proj support"));
    let search = b.get("/search?q=public").await.expect(200);
    assert!(search.text.contains(&format!("/t/{public}")) || search.text.contains("0 matching"));
}
