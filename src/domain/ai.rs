//! The AI lane: an answer built from the most similar solved tickets.
//!
//! Retrieval first: the tickets most like this one (the index's
//! more-like-this over title, body and accepted answer) that were solved and
//! that the caller may see. Confidence is `1 − e^(−s/5)` for the best
//! BM25 score `s`; below `GUILDHALL_AI_MIN_CONFIDENCE` the lane says it has
//! no confident answer instead of inventing one. Otherwise the answer quotes
//! the accepted answers of up to three tickets scoring at least half the
//! best, citing them; when an OpenAI-compatible chat-completions endpoint is
//! configured, those same tickets are sent to it as context and its answer
//! is returned with the same citations (and the quotes are the fallback if
//! it fails).

use crate::db::schema::ticket_messages;
use crate::db::DbConnection;
use crate::domain::search::VisibleHit;
use crate::error::AppResult;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

pub use crate::config::LlmSettings;

/// The AI lane's answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AiAnswer {
    /// The answer, or `null` when no similar solved ticket is close enough.
    pub answer: Option<String>,
    /// The solved tickets it is built from, best first.
    pub citations: Vec<i64>,
    /// 0–1, from the best match's relevance.
    pub confidence: f64,
    /// `llm`, `retrieval` or `none`.
    pub source: &'static str,
    /// Why there is no answer, or why the model was not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `1 − e^(−s/5)`: 0.5 at a BM25 score of about 3.5 (a few distinctive
/// terms in common), 0.86 at 10.
pub fn confidence(best_score: f32) -> f64 {
    1.0 - (-(f64::from(best_score.max(0.0))) / 5.0).exp()
}

const QUOTE_CHARS: usize = 700;

fn excerpt(text: &str) -> String {
    let t = text.trim();
    if t.chars().count() <= QUOTE_CHARS {
        return t.to_owned();
    }
    let cut: String = t.chars().take(QUOTE_CHARS).collect();
    format!("{}…", cut.trim_end())
}

/// What the answer is built from, read from the database: the accepted
/// answers of the most similar solved tickets, or the answer to give when
/// there is nothing to build on.
#[derive(Debug, Clone)]
pub enum Grounding {
    /// Nothing close enough: this is the answer.
    Nothing(AiAnswer),
    /// Up to three solved tickets to quote: (id, title, accepted answer).
    Sources {
        /// Confidence from the best similarity.
        confidence: f64,
        /// The tickets quoted.
        sources: Vec<(i64, String, String)>,
    },
}

/// Reads the accepted answers of the ticket's similar solved tickets
/// (`similar`, best first) that the answer may quote. Database only: the
/// language model is asked afterwards by [`compose`], with no connection
/// held.
pub fn ground(
    conn: &mut DbConnection,
    similar: &[VisibleHit],
    min_confidence: f64,
) -> AppResult<Grounding> {
    let best = similar.first().map(|h| h.score).unwrap_or(0.0);
    let conf = confidence(best);
    let none = |note: &str| {
        Grounding::Nothing(AiAnswer {
            answer: None,
            citations: Vec::new(),
            confidence: conf,
            source: "none",
            note: Some(note.to_owned()),
        })
    };
    if similar.is_empty() {
        return Ok(none("no similar solved ticket"));
    }
    if conf < min_confidence {
        return Ok(none(
            "no similar solved ticket is close enough to answer with confidence",
        ));
    }
    let mut sources: Vec<(i64, String, String)> = Vec::new();
    for h in similar.iter().filter(|h| h.score >= best / 2.0) {
        let Some(mid) = h.ticket.resolution_message_id else {
            continue;
        };
        let text: Option<String> = ticket_messages::table
            .find(mid)
            .filter(ticket_messages::internal.eq(false))
            .filter(ticket_messages::hidden_at.is_null())
            .select(ticket_messages::body)
            .first(conn)
            .optional()?;
        if let Some(text) = text {
            sources.push((h.ticket.id, h.ticket.title.clone(), excerpt(&text)));
        }
        if sources.len() == 3 {
            break;
        }
    }
    if sources.is_empty() {
        return Ok(none("the similar tickets have no accepted answer to quote"));
    }
    Ok(Grounding::Sources {
        confidence: conf,
        sources,
    })
}

/// Builds the answer for a ticket (`title`, `body`) from its grounding:
/// quotes the solved tickets, or, with `llm`, asks the chat-completions
/// endpoint with them as context (falling back to quoting). Call it with no
/// database connection held: the model may take seconds.
pub fn compose(
    grounding: Grounding,
    title: &str,
    body: &str,
    llm: Option<&LlmSettings>,
) -> AiAnswer {
    let (conf, sources) = match grounding {
        Grounding::Nothing(answer) => return answer,
        Grounding::Sources {
            confidence,
            sources,
        } => (confidence, sources),
    };
    let citations: Vec<i64> = sources.iter().map(|s| s.0).collect();
    let quoted = sources
        .iter()
        .map(|(id, title, text)| {
            let quote = text
                .lines()
                .map(|l| format!("> {l}"))
                .collect::<Vec<_>>()
                .join("\n");
            format!("From #{id} \"{title}\" (accepted answer):\n{quote}")
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let retrieval = format!(
        "{} similar solved ticket{} may answer this:\n\n{quoted}",
        sources.len(),
        if sources.len() == 1 { "" } else { "s" }
    );
    let Some(llm) = llm else {
        return AiAnswer {
            answer: Some(retrieval),
            citations,
            confidence: conf,
            source: "retrieval",
            note: None,
        };
    };
    match ask_llm(llm, title, body, &sources) {
        Ok(text) => AiAnswer {
            answer: Some(text),
            citations,
            confidence: conf,
            source: "llm",
            note: None,
        },
        Err(e) => {
            tracing::warn!(error = %e, "the chat-completions endpoint failed; answering from retrieval");
            AiAnswer {
                answer: Some(retrieval),
                citations,
                confidence: conf,
                source: "retrieval",
                note: Some(
                    "the language model could not be reached; quoting the solved tickets instead"
                        .into(),
                ),
            }
        }
    }
}

fn ask_llm(
    llm: &LlmSettings,
    title: &str,
    body: &str,
    sources: &[(i64, String, String)],
) -> anyhow::Result<String> {
    let context = sources
        .iter()
        .map(|(id, t, a)| format!("[#{id}] {t}\nAccepted answer: {a}"))
        .collect::<Vec<_>>()
        .join("\n\n");
    let request = serde_json::json!({
        "model": llm.model,
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You answer support questions about an open-source project using only the solved tickets given. Cite tickets as [#id]. If they do not answer the question, say so."},
            {"role": "user", "content": format!("Solved tickets:\n\n{context}\n\nQuestion: {title}\n\n{body}")},
        ],
    });
    let url = format!("{}/chat/completions", llm.api_base.trim_end_matches('/'));
    let agent = ureq::AgentBuilder::new().timeout(llm.timeout).build();
    let mut req = agent.post(&url).set("content-type", "application/json");
    if let Some(key) = &llm.api_key {
        req = req.set("authorization", &format!("Bearer {key}"));
    }
    let response: serde_json::Value = req
        .send_json(request)
        .map_err(|e| anyhow::anyhow!("chat completions: {}", e.kind()))?
        .into_json()?;
    response["choices"][0]["message"]["content"]
        .as_str()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| anyhow::anyhow!("chat completions: no answer in the response"))
}
