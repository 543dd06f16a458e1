//! More gateways beside a [`System`]'s own: replicas as behind a load
//! balancer, each with its own configuration parsing, key cache and token
//! cache, against the same dev IdP. Nothing is shared between them but the
//! IdP they fetch keys from and the upstream they forward to.

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{API_CLIENT_ID, System, TENANT, gateway_config};

/// A running gateway replica; call [`Replica::stop`].
pub struct Replica {
    pub url: String,
    pub admin_url: String,
    /// The replica itself, to look inside (its own key fetches).
    pub gateway: Arc<authz_proxy::gateway::Gateway>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Replica {
    /// A new gateway on loopback port 0 in front of `upstream`, trusting
    /// `system`'s IdP, with `policy`.
    pub async fn start(system: &System, upstream: &str, policy: &Path) -> anyhow::Result<Replica> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let admin = TcpListener::bind("127.0.0.1:0").await?;
        let (addr, admin_addr) = (listener.local_addr()?, admin.local_addr()?);
        let args: Vec<String> = [
            "authz-proxy",
            "--listen",
            &addr.to_string(),
            "--admin-listen",
            &admin_addr.to_string(),
            "--upstream",
            upstream,
            "--policy",
            &policy.display().to_string(),
            "--tenant",
            TENANT,
            "--client-id",
            API_CLIENT_ID,
            "--instance",
            system.idp.base_url(),
            "--sts-instance",
            system.idp.sts_base_url(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let prepared = authz_proxy::server::prepare(gateway_config(&args)?)?;
        let gateway = prepared.gateway.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            authz_proxy::server::run_prepared(prepared, listener, Some(admin), async {
                let _ = stopped.await;
            })
            .await
            .map_err(anyhow::Error::from)
        });
        Ok(Replica {
            url: format!("http://{addr}"),
            admin_url: format!("http://{admin_addr}"),
            gateway,
            stop,
            task,
        })
    }

    /// Waits until this replica's signing-key fetches reach `count`.
    pub async fn key_fetches(&self, count: u64) {
        let mut fetches = self.gateway.authenticator().watch_fetches();
        let _ = fetches.wait_for(|done| *done >= count).await;
    }

    /// Stops the replica and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }
}
