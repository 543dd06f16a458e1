//! Test harness: one way to describe a request and check the answer, and two
//! ways to deliver it — through `warp::test` (no socket) or over a real
//! loopback socket to `todo_backend::run` on port 0 — so the same scenario
//! runs on both; and two stores to run it on, SQLite and PostgreSQL
//! ([`database`]).

#![allow(dead_code)] // each test module uses a different part of the harness

pub mod database;
pub mod process;
pub mod tls_postgres;

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{Value, json};
use todo_backend::Database;
use tokio::sync::oneshot;
use warp::http::{HeaderMap, Method};

/// A caller as the gateway would describe them.
#[derive(Debug, Clone, Copy)]
pub struct User {
    pub id: &'static str,
    pub tenant: &'static str,
    pub roles: &'static str,
}

pub const ALICE: User = User {
    id: "alice",
    tenant: "tenant-1",
    roles: "User",
};
pub const BOB: User = User {
    id: "bob",
    tenant: "tenant-1",
    roles: "User",
};
pub const ADMIN: User = User {
    id: "root",
    tenant: "tenant-1",
    roles: "User,Admin",
};
/// A user of another tenant, and that tenant's admin.
pub const CAROL: User = User {
    id: "carol",
    tenant: "tenant-2",
    roles: "User",
};
pub const ADMIN_2: User = User {
    id: "root-2",
    tenant: "tenant-2",
    roles: "Admin",
};

/// A request to send.
#[derive(Debug, Clone)]
pub struct Req {
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

pub fn request(method: &str, path: &str) -> Req {
    Req {
        method: method.parse().expect("method"),
        path: path.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

pub fn get(path: &str) -> Req {
    request("GET", path)
}

pub fn delete(path: &str) -> Req {
    request("DELETE", path)
}

/// `POST /todoitems` creating an item called `name`.
pub fn create(name: &str) -> Req {
    request("POST", "/todoitems").json(&json!({"item": {"name": name}}))
}

impl Req {
    /// Adds the identity headers of `user`.
    pub fn by(self, user: User) -> Req {
        self.header("X-User-Id", user.id)
            .header("X-User-Tenant", user.tenant)
            .header("X-User-Roles", user.roles)
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(self, value: &Value) -> Req {
        self.body(serde_json::to_vec(value).unwrap(), "application/json")
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>, content_type: &str) -> Req {
        self.body = body.into();
        self.header("Content-Type", content_type)
    }
}

/// What came back.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// `{"detail": message}`.
pub fn detail(message: &str) -> Value {
    json!({ "detail": message })
}

/// A TodoItem as the API shows it.
pub fn item(id: i64, owner: &str, name: &str) -> Value {
    json!({"id": id, "owner_id": owner, "name": name, "is_complete": false})
}

/// A fresh in-memory SQLite database.
pub fn memory() -> Database {
    sqlite(Path::new(todo_backend::store::IN_MEMORY))
}

/// The SQLite database file `path`.
pub fn sqlite(path: &Path) -> Database {
    Database::Sqlite(path.to_path_buf())
}

/// A running server on a loopback port chosen by the OS.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), todo_backend::Error>>,
}

impl Server {
    pub async fn start(database: &Database) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let config = todo_backend::Config::new(database.clone());
        let task = tokio::spawn(todo_backend::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Asks for a graceful shutdown and waits until `run` has returned.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.expect("server task").expect("run");
    }
}

/// Where requests go.
pub enum Api {
    /// Through the filter with `warp::test`, no socket.
    Filter(todo_backend::Store),
    /// Over HTTP/1.1 on loopback to a running server.
    Socket {
        server: Server,
        client: reqwest::Client,
    },
}

impl Api {
    /// The routes over a fresh in-memory SQLite store, through `warp::test`.
    pub async fn filter() -> Api {
        Api::filter_on(&memory()).await
    }

    /// The routes over the store on `database`, through `warp::test`.
    pub async fn filter_on(database: &Database) -> Api {
        Api::Filter(todo_backend::Store::open(database).await.unwrap())
    }

    /// A server on a fresh in-memory SQLite store, over a socket.
    pub async fn socket() -> Api {
        Api::socket_on(&memory()).await
    }

    /// A server on `database`, over a socket.
    pub async fn socket_on(database: &Database) -> Api {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        Api::Socket {
            server: Server::start(database).await,
            client,
        }
    }

    pub async fn send(&self, req: Req) -> Resp {
        match self {
            Api::Filter(store) => {
                let mut builder = warp::test::request()
                    .method(req.method.as_str())
                    .path(&req.path);
                for (name, value) in &req.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                let response = builder
                    .body(req.body)
                    .reply(&todo_backend::routes(
                        store.clone(),
                        todo_backend::Trust::Headers,
                    ))
                    .await;
                Resp {
                    status: response.status().as_u16(),
                    headers: response.headers().clone(),
                    body: response.body().to_vec(),
                }
            }
            Api::Socket { server, client } => {
                let url = format!("http://{}{}", server.addr, req.path);
                let mut builder = client.request(req.method, url);
                for (name, value) in &req.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                let response = builder.body(req.body).send().await.expect("request failed");
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response.bytes().await.expect("response body").to_vec();
                Resp {
                    status,
                    headers,
                    body,
                }
            }
        }
    }

    /// Sends `req` and asserts the status and the exact JSON body; returns
    /// the response for further checks.
    pub async fn check(&self, req: Req, status: u16, body: Value) -> Resp {
        let what = format!("{} {}", req.method, req.path);
        let response = self.send(req).await;
        assert_eq!(
            (response.status, response.json()),
            (status, body),
            "{what} ({})",
            self.transport()
        );
        response
    }

    /// Sends `req` and asserts the status and that the body is empty.
    pub async fn check_empty(&self, req: Req, status: u16) -> Resp {
        let what = format!("{} {}", req.method, req.path);
        let response = self.send(req).await;
        assert_eq!(
            (
                response.status,
                String::from_utf8_lossy(&response.body).into_owned()
            ),
            (status, String::new()),
            "{what} ({})",
            self.transport()
        );
        response
    }

    /// Stops the server, if there is one.
    pub async fn stop(self) {
        if let Api::Socket { server, .. } = self {
            server.stop().await;
        }
    }

    fn transport(&self) -> &'static str {
        match self {
            Api::Filter(_) => "warp::test",
            Api::Socket { .. } => "socket",
        }
    }
}
