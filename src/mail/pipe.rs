//! `guildhall mail-receive`: hands one message from a mail server's pipe
//! transport (Postfix `pipe`, Exim `pipe`, a procmail rule) to
//! `POST /api/v1/inbound/email`, and tells the mail server by its exit
//! status whether to retry (sysexits: 0 delivered, 75 try again later,
//! 65 the message itself was refused).

use std::io::Read;

/// What the mail server should do with the message.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Handed over (posted or deliberately dropped): the server's answer.
    Delivered(String),
    /// Guildhall is away, or refuses the secret or the route: keep the
    /// message queued and retry (an operator can fix the configuration).
    Defer(String),
    /// The message itself was refused (not message/rfc822, unreadable).
    Refused(String),
}

impl Delivery {
    /// The sysexits code for the mail server.
    pub fn exit_code(&self) -> i32 {
        match self {
            Delivery::Delivered(_) => 0,
            Delivery::Defer(_) => 75,
            Delivery::Refused(_) => 65,
        }
    }
}

/// Reads one message from `input`, at most one byte past the limit (the
/// server drops bigger ones without reading them).
pub fn read_message(mut input: impl Read) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    input
        .by_ref()
        .take(crate::channels::email::MAX_BYTES as u64 + 1)
        .read_to_end(&mut raw)?;
    Ok(raw)
}

/// Posts `raw` to `endpoint` with `secret`; `recipient` is the envelope
/// recipient when the pipe passes it.
pub fn post(endpoint: &str, secret: &[u8], recipient: Option<&str>, raw: &[u8]) -> Delivery {
    let Ok(secret) = std::str::from_utf8(secret) else {
        return Delivery::Defer("the inbound secret is not UTF-8".into());
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(60))
        .build();
    let mut request = agent
        .post(endpoint)
        .set("content-type", "message/rfc822")
        .set("authorization", &format!("Bearer {secret}"));
    if let Some(r) = recipient {
        request = request.query("recipient", r);
    }
    match request.send_bytes(raw) {
        Ok(response) => Delivery::Delivered(response.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, response)) => {
            let body = response.into_string().unwrap_or_default();
            match code {
                // A proxy's size limit (413) is a configuration matter.
                400 | 415 | 422 => Delivery::Refused(format!("{code}: {body}")),
                _ => Delivery::Defer(format!("{code}: {body}")),
            }
        }
        Err(e) => Delivery::Defer(format!("cannot reach {endpoint}: {e}")),
    }
}
