//! Who may connect, and what they may publish and subscribe to.

use crate::client::Client;
use crate::options::{self, Options};
use crate::server::Server;
use nats_common::info::ConnectInfo;
use nats_common::subject;
use std::sync::Arc;

pub enum Outcome {
    Allowed {
        user: String,
        permissions: Option<Arc<Permissions>>,
    },
    /// `user` is what the client claimed, for the log line.
    Denied { user: Option<String> },
}

/// Compiled publish/subscribe rules of one user. Deny wins over allow; a side with no
/// allow list allows everything not denied.
#[derive(Debug, Default)]
pub struct Permissions {
    pub_allow: Option<Vec<String>>,
    pub_deny: Vec<String>,
    sub_allow: Option<Vec<String>>,
    sub_deny: Vec<String>,
}

fn any_match(patterns: &[String], subj: &[u8]) -> bool {
    patterns
        .iter()
        .any(|p| subject::matches(p.as_bytes(), subj))
}

/// For SUB the rule subject may be narrower or wider than the subscription: a subscription
/// is allowed when an allow rule covers it and no deny rule overlaps it.
fn covers(patterns: &[String], subj: &[u8]) -> bool {
    patterns
        .iter()
        .any(|p| subject::matches(p.as_bytes(), subj))
}

impl Permissions {
    pub fn from_options(p: &options::Permissions) -> Permissions {
        let split = |sp: &Option<options::SubjectPermission>| match sp {
            None => (None, Vec::new()),
            Some(sp) => (
                (!sp.allow.is_empty()).then(|| sp.allow.clone()),
                sp.deny.clone(),
            ),
        };
        let (pub_allow, pub_deny) = split(&p.publish);
        let (sub_allow, sub_deny) = split(&p.subscribe);
        Permissions {
            pub_allow,
            pub_deny,
            sub_allow,
            sub_deny,
        }
    }

    pub fn can_publish(&self, subj: &[u8]) -> bool {
        if let Some(allow) = &self.pub_allow {
            if !any_match(allow, subj) {
                return false;
            }
        }
        !any_match(&self.pub_deny, subj)
    }

    pub fn can_subscribe(&self, subj: &[u8], _queue: Option<&[u8]>) -> bool {
        if let Some(allow) = &self.sub_allow {
            if !covers(allow, subj) {
                return false;
            }
        }
        !self
            .sub_deny
            .iter()
            .any(|d| subject::matches(d.as_bytes(), subj))
    }
}

/// Whether a stored password is a bcrypt hash.
pub fn is_bcrypt(stored: &str) -> bool {
    let b = stored.as_bytes();
    b.len() > 7
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

/// Compares a presented secret with a stored one, plain or bcrypt.
pub fn secret_matches(stored: &str, given: &str) -> bool {
    if is_bcrypt(stored) {
        bcrypt::verify(given, stored).unwrap_or(false)
    } else {
        constant_time_eq(stored.as_bytes(), given.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn perms_for(opts: &Options, p: &Option<options::Permissions>) -> Option<Arc<Permissions>> {
    p.as_ref()
        .or(opts.default_permissions.as_ref())
        .map(|p| Arc::new(Permissions::from_options(p)))
}

/// Checks a client's CONNECT credentials against the configured users.
pub fn authenticate(server: &Server, _client: &Client, info: &ConnectInfo) -> Outcome {
    let opts = server.opts();
    if !opts.auth_required() {
        return Outcome::Allowed {
            user: String::new(),
            permissions: perms_for(&opts, &None),
        };
    }
    let claimed = info.user.clone().unwrap_or_default();
    let pass = info.pass.as_deref().unwrap_or_default();
    if !opts.token.is_empty() {
        let given = info.auth_token.as_deref().unwrap_or_default();
        return if secret_matches(&opts.token, given) {
            Outcome::Allowed {
                user: String::new(),
                permissions: perms_for(&opts, &None),
            }
        } else {
            Outcome::Denied { user: None }
        };
    }
    if !opts.username.is_empty() {
        return if claimed == opts.username && secret_matches(&opts.password, pass) {
            Outcome::Allowed {
                user: claimed,
                permissions: perms_for(&opts, &None),
            }
        } else {
            Outcome::Denied {
                user: Some(claimed),
            }
        };
    }
    if let Some(u) = opts.users.iter().find(|u| u.username == claimed) {
        if secret_matches(&u.password, pass) {
            return Outcome::Allowed {
                user: claimed,
                permissions: perms_for(&opts, &u.permissions),
            };
        }
    }
    Outcome::Denied {
        user: Some(claimed),
    }
}

/// The CONNECT JSON for trace lines, with the password hidden as the reference does.
pub fn redact_connect(json: &[u8]) -> String {
    let text = String::from_utf8_lossy(json);
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(mut m)) => {
            if m.contains_key("pass") {
                m.insert("pass".into(), "[REDACTED]".into());
            }
            serde_json::to_string(&m).unwrap_or_else(|_| text.into_owned())
        }
        _ => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_wins() {
        let p = Permissions::from_options(&options::Permissions {
            publish: Some(options::SubjectPermission {
                allow: vec!["foo.>".into()],
                deny: vec!["foo.bar".into()],
            }),
            subscribe: Some(options::SubjectPermission {
                allow: vec![],
                deny: vec!["secret.>".into()],
            }),
            response: None,
        });
        assert!(p.can_publish(b"foo.baz"));
        assert!(!p.can_publish(b"foo.bar"));
        assert!(!p.can_publish(b"other"));
        assert!(p.can_subscribe(b"anything", None));
        assert!(!p.can_subscribe(b"secret.x", None));
    }

    #[test]
    fn bcrypt_detection() {
        assert!(is_bcrypt("$2a$11$abcdefghijklmnopqrstuv"));
        assert!(!is_bcrypt("plain"));
        let h = bcrypt::hash("pw", 4).unwrap();
        assert!(secret_matches(&h, "pw"));
        assert!(!secret_matches(&h, "nope"));
    }
}
