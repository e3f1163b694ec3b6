//! NATS JWTs as the reference's JWT library (v2) reads them: `header.payload.signature`,
//! each part base64url without padding, the payload a JSON claim set signed (ed25519) by
//! the nkey named in `iss`. Decoding checks the header, the signature and the issuer's
//! kind; `validate` lists the problems the library reports (blocking ones, and the time
//! checks `exp`/`nbf`), with its wording.

use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashMap};

/// The library's "no limit" value.
pub const NO_LIMIT: i64 = -1;

/// Base64url without padding as Go's `RawURLEncoding.DecodeString` reads it: CR and LF are
/// skipped, a bad byte is reported by its offset, and stray low bits are ignored.
pub fn decode_b64(s: &str) -> Result<Vec<u8>, String> {
    fn val(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'-' => Some(62),
            b'_' => Some(63),
            _ => None,
        }
    }
    let src = s.as_bytes();
    let corrupt = |at: usize| format!("illegal base64 data at input byte {at}");
    let mut out = Vec::with_capacity(src.len() * 3 / 4);
    let mut si = 0;
    loop {
        let mut quantum = [0u8; 4];
        let mut j = 0;
        while j < 4 {
            if si == src.len() {
                break;
            }
            let c = src[si];
            si += 1;
            if let Some(v) = val(c) {
                quantum[j] = v;
                j += 1;
            } else if c != b'\n' && c != b'\r' {
                return Err(corrupt(si - 1));
            }
        }
        match j {
            0 => return Ok(out),
            1 => return Err(corrupt(si - 1)),
            _ => {}
        }
        let v = (quantum[0] as u32) << 18
            | (quantum[1] as u32) << 12
            | (quantum[2] as u32) << 6
            | quantum[3] as u32;
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.extend_from_slice(&bytes[..j - 1]);
        if j < 4 {
            // Only trailing CR/LF may follow a short quantum.
            while si < src.len() {
                let c = src[si];
                si += 1;
                if c != b'\n' && c != b'\r' {
                    return Err(corrupt(si - 1));
                }
            }
            return Ok(out);
        }
    }
}

/// `null` reads as the type's zero value, as Go's JSON decoding leaves a field alone.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The registered claims every NATS JWT carries.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClaimsData {
    #[serde(deserialize_with = "nullable")]
    pub aud: String,
    #[serde(deserialize_with = "nullable")]
    pub exp: i64,
    #[serde(deserialize_with = "nullable")]
    pub jti: String,
    #[serde(deserialize_with = "nullable")]
    pub iat: i64,
    #[serde(deserialize_with = "nullable")]
    pub iss: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub nbf: i64,
    #[serde(deserialize_with = "nullable")]
    pub sub: String,
}

/// `pub`/`sub` rules of a user (or an account's default permissions).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Permission {
    #[serde(deserialize_with = "nullable")]
    pub allow: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub deny: Vec<String>,
}

impl Permission {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// `resp`: how many replies, for how long (`ttl` in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ResponsePermission {
    #[serde(deserialize_with = "nullable")]
    pub max: i64,
    #[serde(deserialize_with = "nullable")]
    pub ttl: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Permissions {
    #[serde(rename = "pub", deserialize_with = "nullable")]
    pub publish: Permission,
    #[serde(rename = "sub", deserialize_with = "nullable")]
    pub subscribe: Permission,
    pub resp: Option<ResponsePermission>,
}

/// A user's allowed connect times, `HH:MM:SS` each.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TimeRange {
    #[serde(deserialize_with = "nullable")]
    pub start: String,
    #[serde(deserialize_with = "nullable")]
    pub end: String,
}

/// `src`: a JSON array of CIDRs, or one comma separated string of them.
fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum L {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Option::<L>::deserialize(d)? {
        None => Vec::new(),
        Some(L::List(v)) => v,
        Some(L::Text(s)) => {
            let mut out: Vec<String> = Vec::new();
            for p in s.to_lowercase().split(',') {
                let p = p.trim().to_string();
                if !p.is_empty() && !out.contains(&p) {
                    out.push(p);
                }
            }
            out
        }
    })
}

/// A user's permissions and limits (also a scoped signing key's template).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UserPermissionLimits {
    #[serde(rename = "pub", deserialize_with = "nullable")]
    pub publish: Permission,
    #[serde(rename = "sub", deserialize_with = "nullable")]
    pub subscribe: Permission,
    pub resp: Option<ResponsePermission>,
    #[serde(deserialize_with = "cidr_list")]
    pub src: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub times: Vec<TimeRange>,
    #[serde(deserialize_with = "nullable")]
    pub times_location: String,
    #[serde(deserialize_with = "nullable")]
    pub subs: i64,
    #[serde(deserialize_with = "nullable")]
    pub data: i64,
    #[serde(deserialize_with = "nullable")]
    pub payload: i64,
    #[serde(deserialize_with = "nullable")]
    pub bearer_token: bool,
    #[serde(deserialize_with = "nullable")]
    pub allowed_connection_types: Vec<String>,
}

impl UserPermissionLimits {
    pub fn permissions(&self) -> Permissions {
        Permissions {
            publish: self.publish.clone(),
            subscribe: self.subscribe.clone(),
            resp: self.resp.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UserNats {
    #[serde(flatten)]
    pub limits: UserPermissionLimits,
    #[serde(deserialize_with = "nullable")]
    pub issuer_account: String,
    #[serde(deserialize_with = "nullable")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserClaims {
    pub data: ClaimsData,
    pub nats: UserNats,
    pub version: i64,
}

/// Stream or service; `Unknown` when the JWT names neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExportType {
    #[default]
    Unknown,
    Stream,
    Service,
}

impl ExportType {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportType::Stream => "stream",
            ExportType::Service => "service",
            ExportType::Unknown => "unknown",
        }
    }
}

impl<'de> Deserialize<'de> for ExportType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "stream" => Ok(ExportType::Stream),
            "service" => Ok(ExportType::Service),
            _ => Err(serde::de::Error::custom(format!(
                "unknown export type {s:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Import {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub subject: String,
    #[serde(deserialize_with = "nullable")]
    pub account: String,
    #[serde(deserialize_with = "nullable")]
    pub token: String,
    #[serde(deserialize_with = "nullable")]
    pub to: String,
    #[serde(deserialize_with = "nullable")]
    pub local_subject: String,
    #[serde(rename = "type")]
    pub kind: ExportType,
    #[serde(deserialize_with = "nullable")]
    pub share: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Export {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub subject: String,
    #[serde(rename = "type")]
    pub kind: ExportType,
    #[serde(deserialize_with = "nullable")]
    pub token_req: bool,
    #[serde(deserialize_with = "nullable")]
    pub revocations: HashMap<String, i64>,
    #[serde(deserialize_with = "nullable")]
    pub response_type: String,
    /// Nanoseconds.
    #[serde(deserialize_with = "nullable")]
    pub response_threshold: i64,
    pub service_latency: Option<serde_json::Value>,
    #[serde(deserialize_with = "nullable")]
    pub account_token_position: u64,
    #[serde(deserialize_with = "nullable")]
    pub advertise: bool,
    #[serde(deserialize_with = "nullable")]
    pub description: String,
    #[serde(deserialize_with = "nullable")]
    pub info_url: String,
}

/// The account limits an operator grants (`limits` of an account JWT).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct OperatorLimits {
    #[serde(deserialize_with = "nullable")]
    pub subs: i64,
    #[serde(deserialize_with = "nullable")]
    pub data: i64,
    #[serde(deserialize_with = "nullable")]
    pub payload: i64,
    #[serde(deserialize_with = "nullable")]
    pub imports: i64,
    #[serde(deserialize_with = "nullable")]
    pub exports: i64,
    #[serde(deserialize_with = "nullable")]
    pub wildcards: bool,
    #[serde(deserialize_with = "nullable")]
    pub disallow_bearer: bool,
    #[serde(deserialize_with = "nullable")]
    pub conn: i64,
    #[serde(deserialize_with = "nullable")]
    pub leaf: i64,
    #[serde(deserialize_with = "nullable")]
    pub mem_storage: i64,
    #[serde(deserialize_with = "nullable")]
    pub disk_storage: i64,
    #[serde(deserialize_with = "nullable")]
    pub streams: i64,
    #[serde(deserialize_with = "nullable")]
    pub consumer: i64,
    #[serde(deserialize_with = "nullable")]
    pub max_ack_pending: i64,
    #[serde(deserialize_with = "nullable")]
    pub mem_max_stream_bytes: i64,
    #[serde(deserialize_with = "nullable")]
    pub disk_max_stream_bytes: i64,
    #[serde(deserialize_with = "nullable")]
    pub max_bytes_required: bool,
    #[serde(deserialize_with = "nullable")]
    pub tiered_limits: BTreeMap<String, serde_json::Value>,
}

impl OperatorLimits {
    /// No limit of any kind given (all zero), as the library's `IsEmpty`.
    pub fn is_empty(&self) -> bool {
        *self == OperatorLimits::default()
    }
}

/// A scoped signing key: users it signs get the template's permissions and limits.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UserScope {
    #[serde(deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub key: String,
    #[serde(deserialize_with = "nullable")]
    pub role: String,
    #[serde(deserialize_with = "nullable")]
    pub template: UserPermissionLimits,
}

/// `signing_keys`: plain keys (no scope) and scoped ones, by key.
fn signing_keys<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<UserScope>>, D::Error> {
    let items = Option::<Vec<serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    let mut out = BTreeMap::new();
    for v in items {
        match v {
            serde_json::Value::String(k) => {
                out.insert(k, None);
            }
            serde_json::Value::Object(m) => {
                if m.get("kind").and_then(|k| k.as_str()) == Some("user_scope") {
                    let us: UserScope = serde_json::from_value(serde_json::Value::Object(m))
                        .map_err(serde::de::Error::custom)?;
                    out.insert(us.key.clone(), Some(us));
                } else {
                    // The library quotes the map's "type" entry, which a scope never has.
                    let t = match m.get("type") {
                        Some(serde_json::Value::String(s)) => format!("{s:?}"),
                        _ => "%!q(<nil>)".to_string(),
                    };
                    return Err(serde::de::Error::custom(format!(
                        "unknown signing key scope {t}"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// One destination of an account JWT mapping.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct WeightedMapping {
    #[serde(deserialize_with = "nullable")]
    pub subject: String,
    #[serde(deserialize_with = "nullable")]
    pub weight: u8,
    #[serde(deserialize_with = "nullable")]
    pub cluster: String,
}

impl WeightedMapping {
    pub fn weight(&self) -> u8 {
        if self.weight == 0 {
            100
        } else {
            self.weight
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AccountNats {
    #[serde(deserialize_with = "nullable")]
    pub imports: Vec<Option<Import>>,
    #[serde(deserialize_with = "nullable")]
    pub exports: Vec<Option<Export>>,
    #[serde(deserialize_with = "nullable")]
    pub limits: OperatorLimits,
    #[serde(deserialize_with = "signing_keys")]
    pub signing_keys: BTreeMap<String, Option<UserScope>>,
    #[serde(deserialize_with = "nullable")]
    pub revocations: HashMap<String, i64>,
    #[serde(deserialize_with = "nullable")]
    pub default_permissions: Permissions,
    #[serde(deserialize_with = "nullable")]
    pub mappings: BTreeMap<String, Vec<WeightedMapping>>,
    #[serde(deserialize_with = "nullable")]
    pub description: String,
    #[serde(deserialize_with = "nullable")]
    pub info_url: String,
    #[serde(deserialize_with = "nullable")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountClaims {
    pub data: ClaimsData,
    pub nats: AccountNats,
    pub version: i64,
}

/// The reference's `isRevoked`: a revocation at time t covers JWTs issued at or before t.
pub fn is_revoked(revocations: &HashMap<String, i64>, subject: &str, iat: i64) -> bool {
    if revocations.is_empty() {
        return false;
    }
    let covers = |k: &str| revocations.get(k).is_some_and(|t| *t >= iat);
    covers(subject) || covers("*")
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct OperatorNats {
    #[serde(deserialize_with = "nullable")]
    pub signing_keys: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub account_server_url: String,
    #[serde(deserialize_with = "nullable")]
    pub operator_service_urls: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub system_account: String,
    #[serde(deserialize_with = "nullable")]
    pub assert_server_version: String,
    #[serde(deserialize_with = "nullable")]
    pub strict_signing_key_usage: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorClaims {
    pub data: ClaimsData,
    pub nats: OperatorNats,
    pub version: i64,
}

/// A decoded and signature-checked JWT.
#[derive(Debug, Clone)]
pub enum Claims {
    Operator(Box<OperatorClaims>),
    Account(Box<AccountClaims>),
    User(Box<UserClaims>),
    /// Activation tokens and unknown kinds: decoded, but never what a caller asks for.
    Other(ClaimsData),
}

impl Claims {
    fn data(&self) -> &ClaimsData {
        match self {
            Claims::Operator(c) => &c.data,
            Claims::Account(c) => &c.data,
            Claims::User(c) => &c.data,
            Claims::Other(d) => d,
        }
    }
}

/// Go's `encoding/json` wording for the common failures; serde's otherwise.
fn json_error(e: serde_json::Error) -> String {
    if e.is_eof() {
        "unexpected end of JSON input".to_string()
    } else {
        e.to_string()
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Header {
    #[serde(deserialize_with = "nullable")]
    typ: String,
    #[serde(deserialize_with = "nullable")]
    alg: String,
}

/// What kind of claim a payload holds, and its version: v1 JWTs carry `type` at the top,
/// v2 ones inside `nats` with `version`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Identifier {
    #[serde(rename = "type", deserialize_with = "nullable")]
    kind: String,
    #[serde(deserialize_with = "nullable")]
    nats: IdentifierNats,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IdentifierNats {
    #[serde(rename = "type", deserialize_with = "nullable")]
    kind: String,
    #[serde(deserialize_with = "nullable")]
    version: i64,
}

#[derive(Deserialize)]
#[serde(bound = "T: Deserialize<'de> + Default")]
struct Envelope<T> {
    #[serde(flatten)]
    data: ClaimsData,
    #[serde(default, deserialize_with = "nullable")]
    nats: T,
}

fn load<T: for<'de> Deserialize<'de> + Default>(
    data: &[u8],
    version: i64,
) -> Result<(ClaimsData, T), String> {
    if version != 1 && version != 2 {
        return Err(format!(
            "library supports version 2 or less - received {version}"
        ));
    }
    let e: Envelope<T> = serde_json::from_slice(data).map_err(json_error)?;
    Ok((e.data, e.nats))
}

/// Decodes `token`, checking its header, its signature (by `iss`) and that the issuer is
/// of the kind the claim needs; the library's `Decode`.
pub fn decode(token: &str) -> Result<Claims, String> {
    let chunks: Vec<&str> = token.split('.').collect();
    if chunks.len() != 3 {
        return Err("expected 3 chunks".into());
    }
    let h = decode_b64(chunks[0])?;
    let header: Header = serde_json::from_slice(&h).map_err(json_error)?;
    if header.typ.to_uppercase() != "JWT" {
        return Err(format!("not supported type {:?}", header.typ));
    }
    let alg = header.alg.to_lowercase();
    if alg != "ed25519" && alg != "ed25519-nkey" {
        return Err(format!("unexpected {:?} algorithm", header.alg));
    }
    let data = decode_b64(chunks[1])?;
    let id: Identifier = serde_json::from_slice(&data).map_err(json_error)?;
    let (version, kind) = if !id.kind.is_empty() {
        (1, id.kind.clone())
    } else {
        (id.nats.version, id.nats.kind.clone())
    };
    if version > 2 {
        return Err("JWT was generated by a newer version ".into());
    }
    let claims = match kind.as_str() {
        "operator" => {
            let (d, n) = load::<OperatorNats>(&data, version)?;
            Claims::Operator(Box::new(OperatorClaims {
                data: d,
                nats: n,
                version,
            }))
        }
        "account" => {
            let (d, n) = load::<AccountNats>(&data, version)?;
            Claims::Account(Box::new(AccountClaims {
                data: d,
                nats: n,
                version,
            }))
        }
        "user" => {
            let (d, mut n) = load::<UserNats>(&data, version)?;
            if version == 1 {
                // v1 kept `issuer_account` at the top level, and unset limits meant none.
                let v: serde_json::Value = serde_json::from_slice(&data).unwrap_or_default();
                if let Some(ia) = v.get("issuer_account").and_then(|x| x.as_str()) {
                    n.issuer_account = ia.to_string();
                }
                let given = |k: &str| v.get("nats").and_then(|x| x.get(k)).is_some();
                for (k, f) in [
                    ("subs", &mut n.limits.subs),
                    ("data", &mut n.limits.data),
                    ("payload", &mut n.limits.payload),
                ] {
                    if !given(k) {
                        *f = NO_LIMIT;
                    }
                }
            }
            Claims::User(Box::new(UserClaims {
                data: d,
                nats: n,
                version,
            }))
        }
        "activation" => {
            let (d, _) = load::<serde_json::Value>(&data, version)?;
            Claims::Other(d)
        }
        "cluster" => return Err("ClusterClaims are not supported".into()),
        "server" => return Err("ServerClaims are not supported".into()),
        _ => {
            let e: Envelope<serde_json::Value> =
                serde_json::from_slice(&data).map_err(json_error)?;
            return generic_checked(token, &chunks, e.data);
        }
    };
    let sig = decode_b64(chunks[2])?;
    let signed: &[u8] = if version <= 1 {
        chunks[1].as_bytes()
    } else {
        &token.as_bytes()[..chunks[0].len() + chunks[1].len() + 1]
    };
    if !verify(&claims.data().iss, signed, &sig) {
        return Err(format!(
            "claim failed V{} signature verification",
            if version <= 1 { 1 } else { 2 }
        ));
    }
    let iss = &claims.data().iss;
    let ok = match &claims {
        Claims::Operator(_) => is_operator_key(iss),
        Claims::Account(_) => is_account_key(iss) || is_operator_key(iss),
        Claims::User(_) => is_account_key(iss),
        Claims::Other(_) => is_account_key(iss),
    };
    if !ok {
        let prefixes = match &claims {
            Claims::Operator(_) => "[14]",
            Claims::Account(_) => "[0 14]",
            _ => "[0]",
        };
        return Err(format!("unable to validate expected prefixes - {prefixes}"));
    }
    Ok(claims)
}

/// Generic claims: only the signature is checked (they never satisfy a typed decode).
fn generic_checked(token: &str, chunks: &[&str], data: ClaimsData) -> Result<Claims, String> {
    let sig = decode_b64(chunks[2])?;
    // The library treats generic claims as version 0 (V1 signature over the payload).
    let _ = token;
    if !verify(&data.iss, chunks[1].as_bytes(), &sig) {
        return Err("claim failed V1 signature verification".into());
    }
    Ok(Claims::Other(data))
}

fn verify(issuer: &str, payload: &[u8], sig: &[u8]) -> bool {
    match nkeys::KeyPair::from_public_key(issuer) {
        Ok(kp) => kp.verify(payload, sig).is_ok(),
        Err(_) => false,
    }
}

fn is_key_of(k: &str, prefix: char) -> bool {
    k.starts_with(prefix) && nkeys::KeyPair::from_public_key(k).is_ok()
}

pub fn is_operator_key(k: &str) -> bool {
    is_key_of(k, 'O')
}

pub fn is_account_key(k: &str) -> bool {
    is_key_of(k, 'A')
}

pub fn decode_operator(token: &str) -> Result<OperatorClaims, String> {
    match decode(token)? {
        Claims::Operator(c) => Ok(*c),
        _ => Err("not operator claim".into()),
    }
}

pub fn decode_account(token: &str) -> Result<AccountClaims, String> {
    match decode(token)? {
        Claims::Account(c) => Ok(*c),
        _ => Err("not account claim".into()),
    }
}

pub fn decode_user(token: &str) -> Result<UserClaims, String> {
    match decode(token)? {
        Claims::User(c) => Ok(*c),
        _ => Err("not user claim".into()),
    }
}

/// The first JWT of a decorated file (`-----BEGIN ...-----` / token / `------END ...------`),
/// or the whole text when it has no such block; the library's `ParseDecoratedJWT`.
pub fn parse_decorated_jwt(contents: &str) -> String {
    let dashes = |l: &str| {
        let l = l.trim_end_matches('\r');
        let lead = l.trim_start();
        lead.starts_with("---") && lead.len() >= 6 && l.ends_with("---")
    };
    let lines: Vec<&str> = contents.split('\n').collect();
    for i in 0..lines.len() {
        if !dashes(lines[i]) || i + 2 > lines.len() - 1 {
            continue;
        }
        let tok = lines[i + 1].trim_end_matches('\r');
        let token_ok = !tok.is_empty()
            && tok
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'='));
        if token_ok && dashes(lines[i + 2]) {
            return tok.to_string();
        }
    }
    contents.to_string()
}

// ---- validation ----

/// One problem the library finds in a claim set.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub description: String,
    pub blocking: bool,
    pub time_check: bool,
}

#[derive(Debug, Default)]
pub struct Validation {
    pub issues: Vec<Issue>,
}

impl Validation {
    fn error(&mut self, d: impl Into<String>) {
        self.issues.push(Issue {
            description: d.into(),
            blocking: true,
            time_check: false,
        });
    }

    fn warning(&mut self, d: impl Into<String>) {
        self.issues.push(Issue {
            description: d.into(),
            blocking: false,
            time_check: false,
        });
    }

    fn time(&mut self, d: impl Into<String>) {
        self.issues.push(Issue {
            description: d.into(),
            blocking: false,
            time_check: true,
        });
    }

    pub fn is_blocking(&self, include_time_checks: bool) -> bool {
        self.issues
            .iter()
            .any(|i| i.blocking || (include_time_checks && i.time_check))
    }

    /// As the reference prints it in a debug line: `&{Issues:[claim is expired]}`.
    pub fn go_debug(&self) -> String {
        let list: Vec<&str> = self.issues.iter().map(|i| i.description.as_str()).collect();
        format!("&{{Issues:[{}]}}", list.join(" "))
    }
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn validate_times(d: &ClaimsData, vr: &mut Validation) {
    let now = now_unix();
    if d.exp > 0 && now > d.exp {
        vr.time("claim is expired");
    }
    if d.nbf > 0 && d.nbf > now {
        vr.time("claim is not yet valid");
    }
}

fn validate_subject(s: &str, vr: &mut Validation) {
    if s.is_empty() {
        vr.error("subject cannot be empty");
    }
    if s.contains(' ') {
        vr.error(format!("subject {s:?} cannot have spaces"));
    }
}

fn validate_permission(p: &Permission, permit_queue: bool, vr: &mut Validation) {
    for subj in p.allow.iter().chain(&p.deny) {
        let tk: Vec<&str> = subj.split(' ').collect();
        match tk.len() {
            1 => validate_subject(tk[0], vr),
            2 => {
                validate_subject(tk[0], vr);
                validate_subject(tk[1], vr);
                if !permit_queue {
                    vr.error(format!(
                        "Permission Subject \"{subj}\" is not allowed to contain queue"
                    ));
                }
            }
            _ => vr.error(format!(
                "Permission Subject \"{subj}\" contains too many spaces"
            )),
        }
    }
}

fn validate_permissions(p: &Permissions, vr: &mut Validation) {
    validate_permission(&p.subscribe, true, vr);
    validate_permission(&p.publish, false, vr);
}

/// `HH:MM:SS` as Go's `time.Parse("15:04:05", …)` takes it.
pub fn parse_clock(s: &str) -> Option<(u32, u32, u32)> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 3 {
        return None;
    }
    let num = |p: &str, min: usize, max: usize, lim: u32| {
        (p.len() >= min && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
            .filter(|v| *v < lim)
    };
    Some((
        num(parts[0], 1, 2, 24)?,
        num(parts[1], 2, 2, 60)?,
        num(parts[2], 2, 2, 60)?,
    ))
}

/// Go's `net.ParseCIDR`, reduced to what `src` limits need: the network and prefix length.
pub fn parse_cidr(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: std::net::IpAddr = ip.parse().ok()?;
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

pub fn cidr_contains(net: (std::net::IpAddr, u8), ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let (a, b, bits) = match (net.0, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (
            u32::from(n) as u128,
            u32::from(i) as u128,
            net.1 as u32 + 96,
        ),
        (IpAddr::V4(n), IpAddr::V6(i)) => match i.to_ipv4_mapped() {
            Some(i) => (
                u32::from(n) as u128,
                u32::from(i) as u128,
                net.1 as u32 + 96,
            ),
            None => return false,
        },
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), net.1 as u32),
        (IpAddr::V6(n), IpAddr::V4(i)) => {
            (u128::from(n), u128::from(i.to_ipv6_mapped()), net.1 as u32)
        }
    };
    let (a, b) = if matches!(net.0, IpAddr::V4(_)) {
        (a | 0xffff << 32, b | 0xffff << 32)
    } else {
        (a, b)
    };
    if bits == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - bits.min(128));
    a & mask == b & mask
}

/// Time zones the server can evaluate `times` in (no time zone database is bundled).
pub fn known_location(loc: &str) -> bool {
    matches!(loc, "" | "UTC" | "Local")
}

fn validate_user_limits(l: &UserPermissionLimits, vr: &mut Validation) {
    for cidr in &l.src {
        if parse_cidr(cidr).is_none() {
            vr.error(format!("invalid cidr {cidr:?} in user src limits"));
        }
    }
    for t in &l.times {
        if t.start.is_empty() {
            vr.error("time ranges start must contain a start");
        } else if parse_clock(&t.start).is_none() {
            vr.error(format!("start in time range is invalid {:?}", t.start));
        }
        if t.end.is_empty() {
            vr.error("time ranges end must contain an end");
        } else if parse_clock(&t.end).is_none() {
            vr.error(format!("end in time range is invalid {:?}", t.end));
        }
    }
    if !l.times_location.is_empty()
        && !known_location(&l.times_location)
        && !std::path::Path::new("/usr/share/zoneinfo")
            .join(&l.times_location)
            .is_file()
    {
        vr.error(format!(
            "could not parse iana time zone by name: unknown time zone {}",
            l.times_location
        ));
    }
}

impl UserClaims {
    pub fn validate(&self) -> Validation {
        let mut vr = Validation::default();
        validate_times(&self.data, &mut vr);
        validate_permissions(&self.nats.limits.permissions(), &mut vr);
        validate_user_limits(&self.nats.limits, &mut vr);
        if !self.nats.issuer_account.is_empty() && !is_account_key(&self.nats.issuer_account) {
            vr.error("account_id is not an account public key");
        }
        vr
    }

    /// No permissions or limits at all (a scoped signing key's users must be so).
    pub fn has_empty_permissions(&self) -> bool {
        self.nats.limits == UserPermissionLimits::default()
    }
}

fn has_wildcards(v: &str) -> bool {
    v.ends_with(".>")
        || v.contains(".*.")
        || v.ends_with(".*")
        || v.starts_with("*.")
        || v == "*"
        || v == ">"
}

/// The library's `Subject.IsContainedIn`.
pub fn is_contained_in(s: &str, other: &str) -> bool {
    let o: Vec<&str> = other.split('.').collect();
    let m: Vec<&str> = s.split('.').collect();
    if m.len() > o.len() && o[o.len() - 1] != ">" {
        return false;
    }
    if m.len() < o.len() {
        return false;
    }
    for (i, tok) in o.iter().enumerate() {
        if i == o.len() - 1 && *tok == ">" {
            return true;
        }
        if *tok != m[i] && *tok != "*" {
            return false;
        }
    }
    true
}

fn count_token_wildcards(v: &str) -> usize {
    if v == "*" {
        return 1;
    }
    v.split('.').filter(|t| *t == "*").count()
}

/// `local_subject` against the imported subject (the library's `RenamingSubject.Validate`).
fn validate_renaming(s: &str, from: &str, vr: &mut Validation) {
    validate_subject(s, vr);
    if from.is_empty() {
        vr.error("subject cannot be empty");
    }
    if s.contains(' ') {
        vr.error(format!("subject {s:?} cannot have spaces"));
    }
    let suffix = |x: &str| x == ">" || x.ends_with(".>");
    if suffix(s) != suffix(from) {
        vr.error("both, renaming subject and subject, need to end or not end in >");
    }
    let from_cnt = count_token_wildcards(from);
    let mut ref_cnt = 0;
    for tk in s.split('.') {
        if tk == "*" {
            ref_cnt += 1;
        }
        if tk.len() < 2 {
            continue;
        }
        if let Some(n) = tk.strip_prefix('$') {
            if let Ok(idx) = n.parse::<i64>() {
                if idx > from_cnt as i64 {
                    vr.error(format!(
                        "Reference ${idx} in {s:?} reference * in {from:?} that do not exist"
                    ));
                } else {
                    ref_cnt += 1;
                }
            }
        }
    }
    if ref_cnt != from_cnt {
        vr.error("subject does not contain enough * or reference wildcards $[0-9]");
    }
}

/// `local_subject` with its `$n` references as `*` (the library's `ToSubject`).
pub fn renaming_to_subject(s: &str) -> String {
    if !s.contains('$') {
        return s.to_string();
    }
    s.split('.')
        .map(|tk| {
            if tk.len() > 1 && tk.starts_with('$') && tk[1..].parse::<i64>().is_ok() {
                "*"
            } else {
                tk
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn validate_import(i: &Import, vr: &mut Validation) {
    if i.kind == ExportType::Unknown {
        vr.error(format!("invalid import type: {:?}", i.kind.as_str()));
    }
    if i.account.is_empty() {
        vr.error("account to import from is not specified");
    }
    if !i.to.is_empty() {
        vr.warning("the field to has been deprecated (use LocalSubject instead)");
    }
    validate_subject(&i.subject, vr);
    if !i.local_subject.is_empty() {
        validate_renaming(&i.local_subject, &i.subject, vr);
        if !i.to.is_empty() {
            vr.error("Local Subject replaces To");
        }
    }
    if i.share && i.kind != ExportType::Service {
        vr.error(format!(
            "sharing information (for latency tracking) is only valid for services: {:?}",
            i.subject
        ));
    }
    if !i.token.is_empty() {
        // Activation tokens are not evaluated by this server: an import that needs one
        // is reported as the library reports a token it cannot use.
        if !matches!(decode(&i.token), Ok(Claims::Other(_))) {
            vr.error(format!(
                "import {:?} contains an invalid activation token",
                i.subject
            ));
        }
    }
}

fn validate_export(e: &Export, vr: &mut Validation) {
    let service = e.kind == ExportType::Service;
    let stream = e.kind == ExportType::Stream;
    if !service && !stream {
        vr.error(format!("invalid export type: {:?}", e.kind.as_str()));
    }
    let rt = e.response_type.as_str();
    if service && !matches!(rt, "" | "Singleton" | "Stream" | "Chunked") {
        vr.error(format!("invalid response type for service: {rt:?}"));
    }
    if stream && !rt.is_empty() {
        vr.error(format!("invalid response type for stream: {rt:?}"));
    }
    if e.service_latency.is_some() && !service {
        vr.error("latency tracking only permitted for services");
    }
    if e.response_threshold < 0 {
        vr.error("negative response threshold is invalid");
    }
    if e.response_threshold > 0 && !service {
        vr.error("response threshold only valid for services");
    }
    validate_subject(&e.subject, vr);
    if e.account_token_position > 0 {
        if !has_wildcards(&e.subject) {
            vr.error(format!(
                "Account Token Position can only be used with wildcard subjects: {}",
                e.subject
            ));
        } else {
            let toks: Vec<&str> = e.subject.split('.').collect();
            let p = e.account_token_position as usize;
            if p > toks.len() {
                vr.error(format!(
                    "Account Token Position {p} exceeds length of subject '{}'",
                    e.subject
                ));
            } else if toks[p - 1] != "*" {
                vr.error(format!(
                    "Account Token Position {p} matches '{}' but must match a * in: {}",
                    toks[p - 1],
                    e.subject
                ));
            }
        }
    }
    validate_info(&e.description, &e.info_url, vr);
}

fn validate_info(description: &str, info_url: &str, vr: &mut Validation) {
    const MAX_INFO: usize = 8 * 1024;
    if description.len() > MAX_INFO {
        vr.error("Description is too long");
    }
    if !info_url.is_empty() && info_url.len() > MAX_INFO {
        vr.error("Info URL is too long");
    }
}

impl AccountClaims {
    pub fn validate(&self) -> Validation {
        let mut vr = Validation::default();
        validate_times(&self.data, &mut vr);
        let n = &self.nats;
        // Imports: service subjects in the importing account must not overlap.
        let mut to_set: Vec<String> = Vec::new();
        for i in &n.imports {
            let Some(i) = i else {
                vr.error("null import is not allowed");
                continue;
            };
            if i.kind == ExportType::Service {
                let mut sub = i.to.clone();
                if sub.is_empty() {
                    sub = renaming_to_subject(&i.local_subject);
                }
                if sub.is_empty() {
                    sub = i.subject.clone();
                }
                for k in &to_set {
                    if is_contained_in(&sub, k) || is_contained_in(k, &sub) {
                        vr.error(format!(
                            "overlapping subject namespace for {sub:?} and {k:?}"
                        ));
                    }
                }
                if to_set.contains(&sub) {
                    vr.error(format!("overlapping subject namespace for {:?}", i.to));
                }
                to_set.push(sub);
            }
            validate_import(i, &mut vr);
        }
        let (mut services, mut streams) = (Vec::new(), Vec::new());
        for e in &n.exports {
            let Some(e) = e else {
                vr.error("null export is not allowed");
                continue;
            };
            if e.kind == ExportType::Service {
                services.push(e.subject.clone());
            } else {
                streams.push(e.subject.clone());
            }
            validate_export(e, &mut vr);
        }
        for (kind, subjects) in [("service", &services), ("stream", &streams)] {
            let mut seen = std::collections::BTreeMap::new();
            for (i, ns) in subjects.iter().enumerate() {
                for (j, s) in subjects.iter().enumerate() {
                    if i != j && is_contained_in(ns, s) {
                        seen.entry(s.clone()).or_insert_with(|| ns.clone());
                    }
                }
            }
            for (k, v) in seen {
                vr.error(format!("{kind} export subject {k:?} already exports {v:?}"));
            }
        }
        if !n.limits.tiered_limits.is_empty() && n.limits.tiered_limits.contains_key("") {
            vr.error("Tiered JetStream Limits can not contain a blank \"\" tier name");
        }
        validate_permissions(&n.default_permissions, &mut vr);
        for (from, dests) in &n.mappings {
            validate_subject(from, &mut vr);
            let mut total: u32 = 0;
            for d in dests {
                validate_subject(&d.subject, &mut vr);
                if has_wildcards(&d.subject) {
                    vr.error(format!(
                        "Subject {:?} in weighted mapping {from:?} is not allowed to contains wildcard",
                        d.subject
                    ));
                }
                total += d.weight() as u32;
            }
            if total > 100 {
                vr.error(format!(
                    "Mapping {from:?} exceeds 100% among all of it's weighted to mappings"
                ));
            }
        }
        let l = &n.limits;
        let imports = n.imports.len() as i64;
        let exports = n.exports.len() as i64;
        if !l.is_empty() && l.imports >= 0 && imports > l.imports {
            vr.error("the account contains more imports than allowed by the operator");
        }
        if l.imports != NO_LIMIT && imports > l.imports {
            vr.error("the account contains more imports than allowed by the operator");
        }
        if l.exports != NO_LIMIT {
            if exports > l.exports {
                vr.error("the account contains more exports than allowed by the operator");
            }
            if !l.wildcards {
                for e in n.exports.iter().flatten() {
                    if has_wildcards(&e.subject) {
                        vr.error(
                            "the account contains wildcard exports that are not allowed by the operator",
                        );
                    }
                }
            }
        }
        for (k, scope) in &n.signing_keys {
            match scope {
                Some(s) => {
                    if !is_account_key(&s.key) {
                        vr.error(format!("{} is not an account public key", s.key));
                    }
                }
                None => {
                    if !is_account_key(k) {
                        vr.error(format!("{k:?} is not a valid account signing key"));
                    }
                }
            }
        }
        validate_info(&n.description, &n.info_url, &mut vr);
        if is_account_key(&self.data.iss) && !l.is_empty() {
            vr.warning("self-signed account JWTs shouldn't contain operator limits");
        }
        vr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_go_reads_it() {
        assert_eq!(decode_b64("aGk").unwrap(), b"hi");
        assert_eq!(decode_b64("aGk\n").unwrap(), b"hi");
        assert_eq!(
            decode_b64("aGl=").unwrap_err(),
            "illegal base64 data at input byte 3"
        );
        assert_eq!(
            decode_b64("a").unwrap_err(),
            "illegal base64 data at input byte 0"
        );
        assert_eq!(
            decode_b64("ab+c").unwrap_err(),
            "illegal base64 data at input byte 2"
        );
        assert_eq!(decode_b64("").unwrap(), b"");
    }

    #[test]
    fn malformed_tokens_fail_with_the_library_text() {
        assert_eq!(decode("abc").unwrap_err(), "expected 3 chunks");
        assert_eq!(
            decode("eyJ.x.y").unwrap_err(),
            "unexpected end of JSON input"
        );
        let h = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ";
        assert!(decode(&format!("{h}.e30.AAAA")).is_err());
    }

    #[test]
    fn revocations_cover_earlier_jwts() {
        let mut r = HashMap::new();
        r.insert("U1".to_string(), 100);
        assert!(is_revoked(&r, "U1", 100));
        assert!(is_revoked(&r, "U1", 99));
        assert!(!is_revoked(&r, "U1", 101));
        assert!(!is_revoked(&r, "U2", 1));
        r.insert("*".to_string(), 50);
        assert!(is_revoked(&r, "U2", 50));
    }

    #[test]
    fn cidrs() {
        let n = parse_cidr("127.0.0.0/8").unwrap();
        assert!(cidr_contains(n, "127.0.0.1".parse().unwrap()));
        assert!(!cidr_contains(n, "10.0.0.1".parse().unwrap()));
        assert!(parse_cidr("1.2.3.4").is_none());
        assert!(parse_cidr("1.2.3.4/33").is_none());
    }

    #[test]
    fn decorated_files() {
        let creds = "-----BEGIN NATS USER JWT-----\neyJa.b.c\n------END NATS USER JWT------\n\nx\n-----BEGIN USER NKEY SEED-----\nSUAX\n------END USER NKEY SEED------\n";
        assert_eq!(parse_decorated_jwt(creds), "eyJa.b.c");
        assert_eq!(parse_decorated_jwt("eyJa.b.c\n"), "eyJa.b.c\n");
    }
}
