//! [`Idp`]: one identity provider — configuration, signing keys and the
//! in-memory sign-in state — shared by the server and the minter.

use std::path::Path;
use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use crate::claims::{Grant, Shape, access_token_claims, id_token_claims};
use crate::claims_request::{ClaimsRequest, is_auth_context_id};
use crate::config::{App, Config, Tenant, TokenVersion, User};
use crate::keys::client_cert::{self, ClientCertificate};
use crate::keys::{KeyStore, unix};
use crate::server::graph::{GraphMode, GraphStandIn};
use crate::sessions::Sessions;
use crate::{Error, MintRequest};

/// An identity provider: configuration, key store and pending sign-ins.
/// `Send + Sync`; the server shares it behind an `Arc`.
#[derive(Debug)]
pub struct Idp {
    config: Config,
    base_url: String,
    sts_base_url: String,
    keys: KeyStore,
    pub(crate) sessions: Sessions,
    /// The Microsoft Graph stand-in's mode and call count.
    pub(crate) graph: GraphStandIn,
    /// Certificate credentials by client id.
    client_certificates: Vec<(String, ClientCertificate)>,
}

/// How long before `now` an expired test token expired: well past any
/// verifier's clock-skew allowance (Microsoft's libraries allow five minutes).
const EXPIRED_AGO: Duration = Duration::from_secs(3600);

impl Idp {
    /// Opens the key store in `data_dir` (creating a key on first use).
    /// `public_base_url` replaces the configured base URL — tests bind port 0
    /// first and then pass `http://127.0.0.1:{port}` — and the v1 issuer base
    /// too, unless the configuration sets `sts_base_url` explicitly.
    pub fn new(
        config: Config,
        data_dir: &Path,
        public_base_url: Option<String>,
    ) -> Result<Idp, Error> {
        let base_url = public_base_url
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| config.base_url.clone());
        let sts_base_url = config
            .sts_base_url
            .clone()
            .unwrap_or_else(|| base_url.clone());
        let keys = KeyStore::open(data_dir, config.key_rotation_grace)?;
        let client_certificates = config
            .apps
            .iter()
            .filter(|a| a.client_certificate)
            .map(|a| {
                Ok((
                    a.client_id.clone(),
                    client_cert::load_or_make(data_dir, &a.name)?,
                ))
            })
            .collect::<Result<_, Error>>()?;
        Ok(Idp {
            client_certificates,
            config,
            base_url,
            sts_base_url,
            keys,
            sessions: Sessions::default(),
            graph: GraphStandIn::default(),
        })
    }

    /// The configuration this provider serves.
    /// The certificate credential of an app with `client_certificate: true`
    /// (by name or client id): its files and thumbprints.
    pub fn client_certificate(&self, app: &str) -> Option<&ClientCertificate> {
        let app = self.config.app(app)?;
        self.client_certificates
            .iter()
            .find(|(id, _)| *id == app.client_id)
            .map(|(_, cert)| cert)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The public base URL (no trailing slash): host of the v2 issuer.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The v1 issuer base (`{sts_base_url}/{tid}/`); give it to the gateway
    /// as `--sts-instance`.
    pub fn sts_base_url(&self) -> &str {
        &self.sts_base_url
    }

    /// The v2 issuer of a tenant, `{base}/{tid}/v2.0`.
    pub fn issuer_v2(&self, tenant_id: &str) -> String {
        format!("{}/{tenant_id}/v2.0", self.base_url)
    }

    /// The v1 issuer of a tenant, `{sts}/{tid}/` (with the trailing slash).
    pub fn issuer_v1(&self, tenant_id: &str) -> String {
        format!("{}/{tenant_id}/", self.sts_base_url)
    }

    /// Mints an access token, signed with the current key. The same code
    /// backs `dev-idp token`.
    pub fn mint(&self, req: &MintRequest) -> Result<String, Error> {
        let grant = self.resolve(req)?;
        let api = grant.api.api.as_ref().expect("resolved api exposes an api");
        let now = unix(SystemTime::now());
        let lifetime = req.lifetime.unwrap_or(self.config.token_lifetime).as_secs();
        let (iat, nbf, exp) = if req.expired {
            let exp = now.saturating_sub(EXPIRED_AGO.as_secs());
            (
                exp.saturating_sub(lifetime),
                exp.saturating_sub(lifetime),
                exp,
            )
        } else {
            let nbf = now + req.not_before_in.map_or(0, |d| d.as_secs());
            (now, nbf, nbf + lifetime)
        };
        let shape = Shape {
            iat,
            nbf,
            exp,
            version: req.version.unwrap_or(api.access_token_accepted_version),
            audience: req.audience.clone(),
            issuer: req.issuer.clone(),
        };
        self.sign(&grant, &shape)
    }

    /// Starts signing with a fresh key; the old one stays published for the
    /// configured grace period, then disappears from the JWKS.
    pub fn rotate_keys(&self) -> Result<(), Error> {
        self.keys.rotate(SystemTime::now()).map(drop)
    }

    /// Calls the Microsoft Graph stand-in (`/v1.0/users/…`) has received,
    /// answered or not: a test asserts "once, then from the cache" with it.
    pub fn graph_calls(&self) -> u64 {
        self.graph.calls()
    }

    /// Makes the Microsoft Graph stand-in answer, fail (503) or hang, for
    /// tests of a gateway that depends on it.
    pub fn set_graph_mode(&self, mode: GraphMode) {
        self.graph.set_mode(mode);
    }

    /// The keys the JWKS publishes now (the Graph stand-in checks its
    /// tokens with them).
    pub(crate) fn published_keys(
        &self,
    ) -> Result<Vec<std::sync::Arc<crate::keys::SigningKey>>, Error> {
        self.keys.published(SystemTime::now())
    }

    /// The kid of the key that signs new tokens.
    pub fn current_kid(&self) -> Result<String, Error> {
        Ok(self.keys.current()?.kid.clone())
    }

    /// The JWKS document. `issuer` is the v2 keys' `issuer` field (Entra adds
    /// one to v2 key sets); `None` for the v1 document.
    pub fn jwks(&self, issuer: Option<&str>) -> Result<Value, Error> {
        let keys: Vec<Value> = self
            .keys
            .published(SystemTime::now())?
            .iter()
            .map(|k| {
                let mut jwk = json!({
                    "kty": "RSA",
                    "use": "sig",
                    "kid": k.kid,
                    "x5t": k.kid,
                    "n": k.n,
                    "e": k.e,
                    "x5c": [k.x5c],
                });
                if let Some(issuer) = issuer {
                    jwk["issuer"] = json!(issuer);
                }
                jwk
            })
            .collect();
        Ok(json!({ "keys": keys }))
    }

    /// Signs a claim set for a grant: header `typ: JWT`, `alg: RS256`, `kid`,
    /// and for v1 also `x5t`, as Entra's.
    pub(crate) fn sign(&self, grant: &Grant<'_>, shape: &Shape) -> Result<String, Error> {
        let key = self.keys.current()?;
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(key.kid.clone());
        if shape.version == TokenVersion::V1 {
            header.x5t = Some(key.kid.clone());
        }
        let claims = access_token_claims(grant, shape, &self.base_url, &self.sts_base_url);
        jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(Error::Sign)
    }

    /// Signs a v2 ID token for a user signing in to a client.
    pub(crate) fn sign_id_token(
        &self,
        user: &User,
        client: &App,
        tenant: &Tenant,
        nonce: Option<&str>,
    ) -> Result<String, Error> {
        let key = self.keys.current()?;
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(key.kid.clone());
        let shape = self.shape_now(client);
        let claims = id_token_claims(user, client, tenant, nonce, &shape, &self.base_url);
        jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(Error::Sign)
    }

    /// The shape of a normal token issued now.
    pub(crate) fn shape_now(&self, api: &App) -> Shape {
        let now = unix(SystemTime::now());
        let version = api
            .api
            .as_ref()
            .map_or(TokenVersion::V2, |a| a.access_token_accepted_version);
        Shape {
            iat: now,
            nbf: now,
            exp: now + self.config.token_lifetime.as_secs(),
            version,
            audience: None,
            issuer: None,
        }
    }

    fn resolve(&self, req: &MintRequest) -> Result<Grant<'_>, Error> {
        let c = &self.config;
        let api = match &req.api {
            Some(name) => c
                .app(name)
                .ok_or_else(|| mint_err(format!("unknown app '{name}'")))?,
            None => c
                .default_api()
                .ok_or_else(|| mint_err("no app exposes an api".to_owned()))?,
        };
        let Some(exposed) = &api.api else {
            return Err(mint_err(format!("app '{}' exposes no api", api.name)));
        };
        let tenant_override = match &req.tenant {
            Some(t) => Some(
                c.tenant(t)
                    .ok_or_else(|| mint_err(format!("unknown tenant '{t}'")))?,
            ),
            None => None,
        };
        let app = match &req.app {
            Some(name) => Some(
                c.app(name)
                    .ok_or_else(|| mint_err(format!("unknown app '{name}'")))?,
            ),
            None => None,
        };
        match (&req.user, app) {
            (Some(name), app) => {
                let user = c
                    .user(name)
                    .ok_or_else(|| mint_err(format!("unknown user '{name}'")))?;
                let client = match app {
                    Some(app) => app,
                    None => default_client(c)?,
                };
                let home = c.tenant(&user.tenant).expect("config checked user tenants");
                let scopes = match &req.scopes {
                    Some(scopes) => scopes
                        .iter()
                        .map(|s| short_scope(s, api, &exposed.scopes))
                        .collect::<Result<Vec<_>, _>>()?,
                    None => exposed.scopes.clone(),
                };
                if let Some(bad) = req.acrs.iter().find(|id| !is_auth_context_id(id)) {
                    return Err(mint_err(format!(
                        "'{bad}' is not an authentication context id (c1 to c99)"
                    )));
                }
                Ok(Grant {
                    user: Some(user),
                    client,
                    api,
                    tenant: tenant_override.unwrap_or(home),
                    scopes,
                    client_auth: if client.public_client { "0" } else { "1" },
                    requested: ClaimsRequest {
                        acrs: req.acrs.clone(),
                        client_capabilities: req.client_capabilities.clone(),
                    },
                    implicit: false,
                })
            }
            (None, Some(_)) if !req.acrs.is_empty() || !req.client_capabilities.is_empty() => Err(
                mint_err("acrs and client capabilities are claims of user tokens".to_owned()),
            ),
            (None, Some(client)) => Ok(Grant {
                user: None,
                client,
                api,
                tenant: tenant_override.unwrap_or_else(|| first_tenant(c)),
                scopes: Vec::new(),
                client_auth: "1",
                requested: ClaimsRequest::default(),
                implicit: false,
            }),
            (None, None) => Err(mint_err("a token needs a user or an app".to_owned())),
        }
    }
}

fn mint_err(message: String) -> Error {
    Error::Mint(message)
}

fn first_tenant(c: &Config) -> &Tenant {
    c.tenants.first().expect("config has a tenant")
}

/// The client a user token is issued to when none is named: the first public
/// client (the SPA), else the first app that is not an API.
fn default_client(c: &Config) -> Result<&App, Error> {
    c.apps
        .iter()
        .find(|a| a.public_client)
        .or_else(|| c.apps.iter().find(|a| a.api.is_none()))
        .ok_or_else(|| mint_err("no client app to issue a user token to".to_owned()))
}

/// `api://…/access_as_user` or `access_as_user` → `access_as_user`, if the
/// API exposes it.
fn short_scope(scope: &str, api: &App, known: &[String]) -> Result<String, Error> {
    let exposed = api.api.as_ref().expect("api exposes an api");
    let short = scope
        .strip_prefix(&format!("{}/", exposed.identifier_uri))
        .or_else(|| scope.strip_prefix(&format!("{}/", api.client_id)))
        .unwrap_or(scope);
    if known.iter().any(|k| k == short) {
        Ok(short.to_owned())
    } else {
        Err(mint_err(format!(
            "app '{}' exposes no scope '{scope}'",
            api.name
        )))
    }
}
