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
