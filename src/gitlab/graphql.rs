//! GitLab's GraphQL API (`POST /api/graphql`), for what REST does not offer: value streams.
//!
//! GraphQL answers HTTP 200 even when it refuses: an authorisation or schema failure is a
//! top-level `errors` list (with `data.<field>: null`), a validation failure is the payload's
//! own `errors`. The first is a [`GraphqlError::Refused`]; the second is the caller's to read.
//! Everything a document needs from outside goes in `variables`, never into its text.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::{Api, ApiError, Auth, ClientOptions, Effect, Request, Server};
use crate::paging::at_most;
use crate::secret::Secret;

/// A client for one GitLab's GraphQL endpoint (its own connection slots; the REST client's
/// hold on rate limits does not apply, as GitLab counts GraphQL separately).
pub struct GitlabGraphql {
    api: Api,
}

#[derive(Debug)]
pub enum GraphqlError {
    /// The request failed (transport, HTTP status, not JSON).
    Api(ApiError),
    /// GitLab answered with top-level errors: `what` was refused, for these reasons.
    Refused { what: String, messages: Vec<String> },
}

impl std::fmt::Display for GraphqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphqlError::Api(e) => write!(f, "{e}"),
            GraphqlError::Refused { what, messages } => {
                write!(f, "gitlab GraphQL {what}: {}", messages.join("; "))
            }
        }
    }
}

impl std::error::Error for GraphqlError {}

impl From<ApiError> for GraphqlError {
    fn from(e: ApiError) -> Self {
        GraphqlError::Api(e)
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: Value,
    #[serde(default, deserialize_with = "at_most::deserialize")]
    errors: Vec<Value>,
}

impl GitlabGraphql {
    /// For the GitLab at `url` (without `/api/v4`), with the REST API's token.
    pub fn new(url: &str, token: Secret, opts: &ClientOptions) -> Self {
        GitlabGraphql {
            api: Api::new(
                Server::Gitlab,
                &format!("{url}/api"),
                Auth::Bearer(token),
                opts,
            ),
        }
    }

    /// Run `document` with `variables`; `what` names it in errors ("valueStreamCreate").
    /// Returns `data`. Mutations are sent as [`Effect::Create`]: one whose answer is lost is
    /// not repeated blindly (the caller reads the state again instead).
    pub async fn run(
        &self,
        what: &str,
        document: &str,
        variables: Value,
        mutation: bool,
    ) -> Result<Value, GraphqlError> {
        let effect = if mutation {
            Effect::Create
        } else {
            Effect::Read
        };
        let body = json!({ "query": document, "variables": variables });
        let req = Request::get("/graphql").json(Method::POST, body, effect);
        let answer: Answer = self.api.send(req).await?.body;
        if answer.errors.is_empty() {
            return Ok(answer.data);
        }
        let messages = answer
            .errors
            .iter()
            .take(5)
            .map(|e| {
                let text = e.get("message").and_then(Value::as_str).unwrap_or("?");
                crate::safe_text::safe_within(text, 500)
            })
            .collect();
        Err(GraphqlError::Refused {
            what: what.to_string(),
            messages,
        })
    }
}
