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
