//! Hot reload of the policy of a running gateway: by file change (polled),
//! through the Kubernetes ConfigMap symlink swap, and by the SIGHUP path
//! (called directly: no signal is sent to the test process). Tests wait on
//! the reloader's status channel, never on a clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use authz_proxy::reload::{ReloadResult, ReloadStatus, Trigger};
use dev_idp::MintRequest;
use e2e_tests::{Options, System};

/// Alice (scope `access_as_user`, no role) may list todos.
const OPEN: &str = "\
version: 1
routes:
  - name: health
    path: /health
    methods: [GET]
    allow: anonymous
  - name: todos
    path: /todoitems
    methods: [GET]
    scopes: [access_as_user]
";

/// Listing todos needs the Admin role: alice gets 403.
const ADMIN_ONLY: &str = "\
version: 1
routes:
  - name: health
    path: /health
    methods: [GET]
    allow: anonymous
  - name: todos
    path: /todoitems
    methods: [GET]
    roles: [Admin]
";

/// `role:` for `roles:` on line 10: refused, so the old policy stays.
const MISSPELT: &str = "\
version: 1
routes:
  - name: health
    path: /health
    methods: [GET]
    allow: anonymous
  - name: todos
    path: /todoitems
    methods: [GET]
    role: [Admin]
";

/// The 403 alice gets under [`ADMIN_ONLY`].
const ADMIN_REQUIRED: &str = r#"{"detail":"the role Admin is required"}"#;

/// Replaces `path` atomically (write aside, rename over), as deploy tools do.
fn replace(path: &Path, text: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

async fn start(policy: &Path, poll_seconds: &str) -> System {
    let sys = System::start_with(Options {
        policy: policy.to_owned(),
        gateway_args: vec!["--policy-poll-seconds".into(), poll_seconds.into()],
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    sys
}

/// Waits until `done` holds for the reloader's status.
async fn reloaded(sys: &System, done: impl FnMut(&ReloadStatus) -> bool) -> ReloadStatus {
    let mut status = sys.reloader.subscribe();
    status.wait_for(done).await.unwrap().clone()
}

/// `GET /todoitems` as alice: status and body.
async fn list(sys: &System, token: &str) -> (u16, String) {
    let response = sys
        .http
        .get(format!("{}/todoitems", sys.gateway_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("the gateway answers every request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn alice(sys: &System) -> String {
    sys.token(MintRequest::user("alice"))
}

#[tokio::test]
async fn policy_replaced_under_load_every_response_follows_the_old_or_the_new_policy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, OPEN).unwrap();
    let sys = Arc::new(start(&file, "0.01").await);
    let token = alice(&sys);
    assert_eq!(list(&sys, &token).await.0, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (sys, token, stop) = (sys.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    seen.push(list(&sys, &token).await);
                }
                seen
            })
        })
        .collect();

    // Six swaps back and forth; after each, a new request follows the new policy.
    for round in 1..=6_u64 {
        let (text, expected) = if round % 2 == 1 {
            (ADMIN_ONLY, 403)
        } else {
            (OPEN, 200)
        };
        replace(&file, text);
        let status = reloaded(&sys, |s| s.applied >= round).await;
        assert_eq!(
            status.hash,
            authz_proxy::reload::policy_hash(text.as_bytes())
        );
        assert_eq!(list(&sys, &token).await.0, expected, "round {round}");
    }
    stop.store(true, Ordering::Relaxed);

    let mut counts = [0_usize; 2];
    for worker in workers {
        for (status, body) in worker.await.unwrap() {
            match status {
                200 => counts[0] += 1,
                403 => {
                    assert_eq!(body, ADMIN_REQUIRED);
                    counts[1] += 1;
                }
                other => panic!("a request failed during the reload: {other} {body}"),
            }
        }
    }
    assert!(counts[0] > 0 && counts[1] > 0, "{counts:?}");
    let status = sys.reloader.subscribe().borrow().clone();
    assert_eq!((status.applied, status.rejected), (6, 0));
    Arc::into_inner(sys).unwrap().stop().await.unwrap();
}

#[tokio::test]
async fn invalid_new_policy_is_refused_with_its_errors_and_the_old_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, OPEN).unwrap();
    let sys = start(&file, "0.01").await;
    let token = alice(&sys);

    replace(&file, MISSPELT);
    let status = reloaded(&sys, |s| s.rejected >= 1).await;
    assert_eq!(
        status.last_errors.unwrap(),
        format!(
            "{}:10:5: unknown field `role`, expected one of name, path, paths, methods, allow, roles, scopes, forward_authorization, extra, upstream, max_body_bytes, audiences, apps, tenants, callers, guests, groups, auth_context, enforce",
            file.display()
        )
    );
    assert_eq!(status.applied, 0);
    assert_eq!(
        status.hash,
        authz_proxy::reload::policy_hash(OPEN.as_bytes())
    );
    assert_eq!(list(&sys, &token).await.0, 200);

    replace(&file, ADMIN_ONLY);
    let status = reloaded(&sys, |s| s.applied >= 1).await;
    assert_eq!(status.last_errors, None);
    assert_eq!(list(&sys, &token).await, (403, ADMIN_REQUIRED.to_owned()));
    sys.stop().await.unwrap();
}

/// The layout the kubelet gives a mounted ConfigMap: the file is a symlink
/// into `..data`, itself a symlink to a timestamped directory; an update
/// writes a new directory and renames a new `..data` link over the old one.
struct ConfigMapVolume {
    dir: PathBuf,
}

impl ConfigMapVolume {
    fn new(dir: &Path, text: &str) -> ConfigMapVolume {
        let volume = ConfigMapVolume {
            dir: dir.to_owned(),
        };
        volume.write_version("..2026_11_28_10_00_00.000000001", text);
        std::os::unix::fs::symlink("..2026_11_28_10_00_00.000000001", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/policy.yaml", dir.join("policy.yaml")).unwrap();
        volume
    }

    fn write_version(&self, name: &str, text: &str) {
        std::fs::create_dir(self.dir.join(name)).unwrap();
        std::fs::write(self.dir.join(name).join("policy.yaml"), text).unwrap();
    }

    /// The kubelet's atomic update.
    fn update(&self, name: &str, text: &str) {
        self.write_version(name, text);
        std::os::unix::fs::symlink(name, self.dir.join("..data_tmp")).unwrap();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
    }
}

#[tokio::test]
async fn configmap_symlink_swap_is_picked_up_by_the_poll() {
    let dir = tempfile::tempdir().unwrap();
    let volume = ConfigMapVolume::new(dir.path(), OPEN);
    let sys = start(&dir.path().join("policy.yaml"), "0.01").await;
    let token = alice(&sys);
    assert_eq!(list(&sys, &token).await.0, 200);

    volume.update("..2026_11_28_10_05_00.000000002", ADMIN_ONLY);
    let status = reloaded(&sys, |s| s.applied >= 1).await;
    assert_eq!(
        status.hash,
        authz_proxy::reload::policy_hash(ADMIN_ONLY.as_bytes())
    );
    assert_eq!(list(&sys, &token).await, (403, ADMIN_REQUIRED.to_owned()));

    volume.update("..2026_11_28_10_10_00.000000003", OPEN);
    reloaded(&sys, |s| s.applied >= 2).await;
    assert_eq!(list(&sys, &token).await.0, 200);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn sighup_reload_applies_a_changed_file_and_skips_an_unchanged_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, OPEN).unwrap();
    // Polling off: only the SIGHUP path reloads.
    let sys = start(&file, "0").await;
    let token = alice(&sys);

    assert_eq!(
        sys.reloader.reload(Trigger::Signal),
        ReloadResult::Unchanged
    );
    replace(&file, ADMIN_ONLY);
    assert_eq!(
        list(&sys, &token).await.0,
        200,
        "no reload without a trigger"
    );
    assert_eq!(
        sys.reloader.reload(Trigger::Signal),
        ReloadResult::Applied {
            hash: authz_proxy::reload::policy_hash(ADMIN_ONLY.as_bytes()),
            routes: 2
        }
    );
    assert_eq!(list(&sys, &token).await, (403, ADMIN_REQUIRED.to_owned()));
    sys.stop().await.unwrap();
}
