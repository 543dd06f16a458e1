//! The Kubernetes manifests ship the repository's own policy: the ConfigMap
//! in `deploy/kubernetes/policy-configmap.yaml` holds `policy.yaml` byte for
//! byte. (CI validates every manifest against the Kubernetes schemas with
//! `kubernetes-validate`.)

use std::path::Path;

#[test]
fn the_policy_configmap_holds_the_repository_policy_byte_for_byte() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest =
        std::fs::read_to_string(root.join("deploy/kubernetes/policy-configmap.yaml")).unwrap();
    let configmap: serde_json::Value = serde_saphyr::from_str(&manifest).unwrap();
    assert_eq!(configmap["kind"], "ConfigMap");
    let shipped = configmap["data"]["policy.yaml"].as_str().unwrap();
    let policy = std::fs::read_to_string(root.join("policy.yaml")).unwrap();
    assert_eq!(
        shipped, policy,
        "regenerate deploy/kubernetes/policy-configmap.yaml from policy.yaml"
    );
}

/// The backend trusts identity headers: its NetworkPolicy admits the
/// gateway's pods alone, on the backend's port, and selects exactly the
/// labels the two Deployments carry.
#[test]
fn only_the_gateways_pods_may_reach_the_backend() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |name: &str| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(root.join("deploy/kubernetes").join(name)).unwrap();
        serde_saphyr::from_multiple(&text).unwrap()
    };
    let policy = &read("backend-networkpolicy.yaml")[0];
    assert_eq!(policy["kind"], "NetworkPolicy");
    let label = "app.kubernetes.io/name";
    let pod_labels = |file: &str| -> serde_json::Value {
        read(file)
            .into_iter()
            .find(|d| d["kind"] == "Deployment")
            .unwrap()["spec"]["template"]["metadata"]["labels"][label]
            .clone()
    };
    let spec = &policy["spec"];
    assert_eq!(
        spec["podSelector"]["matchLabels"][label],
        pod_labels("backend.yaml")
    );
    assert_eq!(spec["policyTypes"], serde_json::json!(["Ingress"]));
    let rules = spec["ingress"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "one rule: from the gateway");
    let from = rules[0]["from"].as_array().unwrap();
    assert_eq!(from.len(), 1);
    assert_eq!(
        from[0]["podSelector"]["matchLabels"][label],
        pod_labels("gateway.yaml")
    );
    assert_eq!(rules[0]["ports"][0]["port"], 8081);
}

/// The backend requires the gateway's signed assertion: its JWKS URL is the
/// admin Service's (which also publishes not-ready pods, so the backend's
/// readiness does not wait on the gateway's, which waits on the backend's),
/// `iss` and `aud` come from the ConfigMap keys the gateway reads, and every
/// gateway replica signs with the one key from a Secret.
#[test]
fn the_backend_verifies_the_gateways_assertion_with_one_shared_key() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |name: &str| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(root.join("deploy/kubernetes").join(name)).unwrap();
        serde_saphyr::from_multiple(&text).unwrap()
    };
    let find = |file: &str, kind: &str, name: &str| -> serde_json::Value {
        read(file)
            .into_iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} in {file}"))
    };
    let container = |deployment: &serde_json::Value| {
        deployment["spec"]["template"]["spec"]["containers"][0].clone()
    };
    let backend = container(&find("backend.yaml", "Deployment", "todo-backend"));
    let gateway_deployment = find("gateway.yaml", "Deployment", "authz-proxy");
    let gateway = container(&gateway_deployment);
    let env = |container: &serde_json::Value, name: &str| -> serde_json::Value {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} unset"))
            .clone()
    };
    let settings = find("settings.yaml", "ConfigMap", "authz-proxy-settings");

    assert_eq!(env(&backend, "TODO_TRUST")["value"], "gateway-assertion");
    // iss and aud: the ConfigMap's keys, which the gateway reads by envFrom.
    assert_eq!(
        gateway["envFrom"][0]["configMapRef"]["name"],
        "authz-proxy-settings"
    );
    for (backend_var, key) in [
        ("TODO_GATEWAY_ISSUER", "ASSERTION_ISSUER"),
        ("TODO_ASSERTION_AUDIENCE", "ASSERTION_AUDIENCE"),
    ] {
        let from = &env(&backend, backend_var)["valueFrom"]["configMapKeyRef"];
        assert_eq!(from["name"], "authz-proxy-settings", "{backend_var}");
        assert_eq!(from["key"], key, "{backend_var}");
        assert!(settings["data"][key].is_string(), "{key} in the ConfigMap");
    }
    assert_eq!(
        settings["data"]["ASSERTION_AUDIENCE"],
        env(&gateway, "UPSTREAM_URL")["value"],
        "aud is the backend's URL, the gateway's upstream"
    );
    // The JWKS from the admin Service, on its port.
    let admin = find("gateway.yaml", "Service", "authz-proxy-admin");
    let port = admin["spec"]["ports"][0]["port"].as_u64().unwrap();
    assert_eq!(
        env(&backend, "TODO_GATEWAY_JWKS_URL")["value"],
        format!("http://authz-proxy-admin:{port}/.well-known/authz-proxy/jwks.json")
    );
    assert_eq!(admin["spec"]["publishNotReadyAddresses"], true);
    assert_eq!(backend["readinessProbe"]["httpGet"]["path"], "/ready");
    // One signing key for every replica, from a Secret.
    let key_file = env(&gateway, "ASSERTION_KEY")["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let mount = gateway["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| key_file.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap())))
        .expect("the key file is on a mounted volume")
        .clone();
    let volume = gateway_deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap()
        .clone();
    assert_eq!(volume["secret"]["secretName"], "authz-proxy-assertion-key");
}
