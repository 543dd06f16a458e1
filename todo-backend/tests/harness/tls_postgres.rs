//! A throw-away PostgreSQL server of the test's own, with TLS: `initdb`
//! into a temporary directory, a certificate for `localhost` and
//! `127.0.0.1` from a test CA made here (rcgen), `ssl=on`, and a
//! `pg_hba.conf` that accepts TCP clients only over TLS (`hostssl`), with a
//! password (SCRAM). It listens on a loopback port that was free, and on a
//! Unix socket in its directory; the shared `TEST_DATABASE_URL` cluster is
//! left alone.
//!
//! Debian's binaries (`/usr/lib/postgresql/<version>/bin`, the package
//! `scripts/test.sh` installs) are used. Without them the test is skipped
//! with a note, except in CI (`CI=true`), where that fails it. PostgreSQL
//! will not run as root: as root (CI), the server runs as the `postgres`
//! user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// The role (a superuser) and its password; the database is `postgres`.
pub const USER: &str = "todo";
pub const PASSWORD: &str = "tls-test-password";

/// A running throw-away server; stopped and deleted when dropped.
pub struct TlsPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The uid and gid the server runs as (`None`: as the test itself).
    owner: Option<(u32, u32)>,
    pub port: u16,
    child: Option<Child>,
}

impl TlsPostgres {
    /// Creates the cluster and starts it; `None` (after a note) when
    /// PostgreSQL is not installed, outside CI.
    pub fn start() -> Option<TlsPostgres> {
        let bin = binaries()?;
        let dir = tempfile::tempdir().unwrap();
        let owner = server_user();
        let port = free_port();
        let mut server = TlsPostgres {
            bin,
            dir,
            owner,
            port,
            child: None,
        };
        server.init();
        server.run();
        Some(server)
    }

    /// The test CA's certificate (PEM), which signed the server's.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Another CA's certificate, which signed nothing the server has.
    pub fn unknown_ca_file(&self) -> PathBuf {
        self.dir.path().join("unknown-ca.pem")
    }

    /// A URL to the database over TCP, to `host` (the name the certificate
    /// is checked against) at `127.0.0.1`, with `params` appended.
    pub fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@{host}:{}/postgres?hostaddr=127.0.0.1&{params}",
            self.port
        )
    }

    /// A `key=value` connection string to the database over the Unix
    /// socket (where `pg_hba.conf` trusts every local user), with `params`.
    pub fn socket_url(&self, params: &str) -> String {
        format!(
            "host={} port={} user={USER} dbname=postgres {params}",
            self.dir.path().display(),
            self.port
        )
    }

    /// Stops the server (fast shutdown: sessions are ended) and waits until
    /// it has exited.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let stopped = self
            .command("pg_ctl")
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(self.data())
            .status()
            .unwrap();
        if !stopped.success() {
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Starts the stopped server again, on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        self.run();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// A PostgreSQL binary, run as the server's user.
    fn command(&self, name: &str) -> Command {
        let mut command = Command::new(self.bin.join(name));
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid);
        }
        command
    }

    /// initdb, certificates, `pg_hba.conf`; everything owned by the server's
    /// user, the key readable by it alone.
    fn init(&self) {
        let dir = self.dir.path();
        std::fs::write(dir.join("password"), PASSWORD).unwrap();
        write_pki(dir);
        if let Some((uid, gid)) = self.owner {
            for entry in std::fs::read_dir(dir).unwrap() {
                std::os::unix::fs::chown(entry.unwrap().path(), Some(uid), Some(gid)).unwrap();
            }
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
        }
        let output = self
            .command("initdb")
            .args(["--no-sync", "--no-instructions", "-E", "UTF8", "-U", USER])
            .arg(format!("--pwfile={}", dir.join("password").display()))
            .arg("-D")
            .arg(self.data())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // TCP only over TLS; the Unix socket (for pg_ctl) trusts its users.
        std::fs::write(
            self.data().join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             hostssl all all ::1/128 scram-sha-256\n",
        )
        .unwrap();
    }

    /// Starts `postgres` and waits until it accepts connections
    /// (`pg_isready`, polled), failing with its log if it exits.
    fn run(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::File::create(self.log()).unwrap();
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(self.log(), Some(uid), Some(gid)).unwrap();
        }
        let settings = [
            "listen_addresses=127.0.0.1".to_owned(),
            format!("port={}", self.port),
            format!("unix_socket_directories={}", dir.display()),
            "ssl=on".to_owned(),
            format!("ssl_cert_file={}", dir.join("server.crt").display()),
            format!("ssl_key_file={}", dir.join("server.key").display()),
            "fsync=off".to_owned(),
            // Small: several of these run at once, beside the shared cluster.
            "max_connections=20".to_owned(),
            "shared_buffers=16MB".to_owned(),
        ];
        let mut command = self.command("postgres");
        command.arg("-D").arg(self.data());
        for setting in settings {
            command.arg("-c").arg(setting);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "postgres exited ({status}): {}",
                    std::fs::read_to_string(self.log()).unwrap_or_default()
                );
            }
            let ready = self
                .command("pg_isready")
                .args(["-q", "-h"])
                .arg(dir)
                .args(["-p", &self.port.to_string()])
                .status()
                .unwrap();
            if ready.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not become ready: {}",
                std::fs::read_to_string(self.log()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The newest Debian PostgreSQL's `bin` directory.
fn binaries() -> Option<PathBuf> {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max();
    match newest {
        Some((_, bin)) => Some(bin),
        None if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!(
                "PostgreSQL is not installed under /usr/lib/postgresql (scripts/test.sh installs it)"
            )
        }
        None => {
            eprintln!(
                "PostgreSQL is not installed under /usr/lib/postgresql: this test is skipped"
            );
            None
        }
    }
}

/// As root, the `postgres` user's uid and gid (PostgreSQL refuses root).
fn server_user() -> Option<(u32, u32)> {
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let fields: Vec<&str> = passwd
        .lines()
        .find(|line| line.starts_with("postgres:"))
        .expect("running as root, the postgres user is needed to run PostgreSQL")
        .split(':')
        .collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ca.pem` and the server's `server.crt`/`server.key` for `localhost` and
/// `127.0.0.1`; `unknown-ca.pem`, a CA that signed nothing here.
fn write_pki(dir: &Path) {
    let ca = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    };
    let (test_ca, unknown_ca) = (ca("todo test CA"), ca("unknown CA"));
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let server = params.signed_by(&key, &test_ca).unwrap();
    std::fs::write(dir.join("ca.pem"), test_ca.pem()).unwrap();
    std::fs::write(dir.join("unknown-ca.pem"), unknown_ca.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), server.pem()).unwrap();
    let key_file = dir.join("server.key");
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
}
