//! `gantry plan`: what the controller would change, per object, without
//! writing anything (no finalizers, no status, no provider writes). It lists
//! the cluster once, translates every Gantry object and asks its class's
//! provider for `plan`.

use std::{collections::BTreeMap, sync::Arc};

use gantry_model::{LoadBalancerClass, provider::Change};
use k8s_openapi::api::{
    core::v1::{Node, Secret, Service},
    networking::v1::{Ingress, IngressClass},
};
use kube::{Api, Client, ResourceExt, api::ListParams};
use serde::Serialize;

use crate::{
    error::{Error, Result},
    providers::{ProviderFactory, ProviderRegistry},
    secrets::check_secret_name,
    translate::{self, Source},
};

/// Options of `gantry plan`.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// Only this namespace (all when `None`).
    pub namespace: Option<String>,
    /// Class of Services without one.
    pub default_class: Option<String>,
    /// Cluster id in ownership.
    pub cluster_id: String,
}

/// The plan of one object.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanEntry {
    /// `Service` or `Ingress`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Selected class.
    pub class: String,
    /// Changes the provider would make.
    pub changes: Vec<Change>,
    /// Translation warnings.
    pub warnings: Vec<String>,
    /// Why no plan could be made.
    pub error: Option<String>,
}

/// A one-off snapshot of the cluster.
#[derive(Debug, Default)]
struct Listed {
    nodes: Vec<Node>,
    services: Vec<Service>,
    secrets: BTreeMap<(String, String), Secret>,
    ingress_classes: Vec<IngressClass>,
    lb_classes: Vec<LoadBalancerClass>,
}

impl Source for Listed {
    fn nodes(&self) -> Vec<Node> {
        self.nodes.clone()
    }

    fn services_in(&self, namespace: &str) -> Vec<Service> {
        self.services
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(namespace))
            .cloned()
            .collect()
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Secret> {
        self.secrets
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn ingress_classes(&self) -> Vec<IngressClass> {
        self.ingress_classes.clone()
    }

    fn lb_classes(&self) -> Vec<LoadBalancerClass> {
        self.lb_classes.clone()
    }
}

async fn list<K>(api: Api<K>, what: &'static str) -> Result<Vec<K>>
where
    K: Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .map_err(|source| Error::List { what, source })
}

/// The error of an object whose class's settings are invalid.
fn invalid_class(class: &str, e: &gantry_model::class::ClassError) -> Error {
    Error::InvalidClass {
        class: class.to_string(),
        message: e.to_string(),
    }
}

/// Compute the plan of every Gantry object.
pub async fn plan(
    client: Client,
    opts: &PlanOptions,
    factory: Arc<dyn ProviderFactory>,
) -> Result<Vec<PlanEntry>> {
    let scoped = |c: &Client| -> (Api<Service>, Api<Ingress>) {
        match &opts.namespace {
            Some(ns) => (
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
            ),
            None => (Api::all(c.clone()), Api::all(c.clone())),
        }
    };
    let (svc_api, ing_api) = scoped(&client);
    let targets = list(svc_api, "services").await?;
    let ingresses = list(ing_api, "ingresses").await?;
    let mut listed = Listed {
        nodes: list(Api::all(client.clone()), "nodes").await?,
        services: list(Api::all(client.clone()), "services").await?,
        secrets: BTreeMap::new(),
        ingress_classes: list(Api::all(client.clone()), "ingressclasses").await?,
        lb_classes: list(Api::all(client.clone()), "loadbalancerclasses").await?,
    };
    // Only the Secrets Ingresses name, read one by one.
    for ing in &ingresses {
        let ns = ing.namespace().unwrap_or_default();
        let (_, secrets) = gantry_model::select::ingress_references(ing);
        // A cross-namespace or path-like name is never put into a request
        // path; translation reports it.
        for name in secrets
            .into_iter()
            .filter(|n| check_secret_name(0, n).is_ok())
        {
            let secret = Api::<Secret>::namespaced(client.clone(), &ns)
                .get_opt(&name)
                .await
                .map_err(|source| Error::Get {
                    what: format!("secret {ns}/{name}"),
                    source,
                })?;
            if let Some(secret) = secret {
                listed.secrets.insert((ns.clone(), name), secret);
            }
        }
    }

    let registry = ProviderRegistry::new(factory);
    let mut out = Vec::new();
    for svc in &targets {
        if let Some(class) = translate::service_class(svc, opts.default_class.as_deref(), &listed) {
            let result = match listed.lb_class(&class) {
                Some(c) if let Err(e) = c.spec.validate() => Err(invalid_class(&class, &e)),
                Some(c) => translate::service(svc, &listed, &opts.cluster_id, &class, &c.spec)
                    .map_err(|e| Error::Translate(Box::new(e)))
                    .map(|t| (t, c)),
                None => Err(Error::ClassNotFound(class.clone())),
            };
            out.push(entry("Service", svc, class, result, &registry).await);
        }
    }
    for ing in &ingresses {
        if let Some(class) = translate::ingress_class(ing, &listed) {
            let result = match listed.lb_class(&class) {
                Some(c) if let Err(e) = c.spec.validate() => Err(invalid_class(&class, &e)),
                Some(c) => translate::ingress(ing, &listed, &opts.cluster_id, &class, &c.spec)
                    .map_err(|e| Error::Translate(Box::new(e)))
                    .map(|t| (t, c)),
                None => Err(Error::ClassNotFound(class.clone())),
            };
            out.push(entry("Ingress", ing, class, result, &registry).await);
        }
    }
    Ok(out)
}

async fn entry<K: ResourceExt>(
    kind: &str,
    obj: &K,
    class: String,
    translated: Result<(gantry_model::translate::Translated, LoadBalancerClass)>,
    registry: &ProviderRegistry,
) -> PlanEntry {
    let mut e = PlanEntry {
        kind: kind.into(),
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        class,
        changes: Vec::new(),
        warnings: Vec::new(),
        error: None,
    };
    let planned = async {
        let (t, c) = translated?;
        e.warnings = t.warnings.clone();
        let provider = registry.get(&c).await?;
        provider
            .plan(&t.desired)
            .await
            .map_err(|source| Error::Provider {
                op: "plan",
                class: e.class.clone(),
                source: Box::new(source),
            })
    }
    .await;
    match planned {
        Ok(p) => e.changes = p.changes,
        Err(err) => e.error = Some(err.to_string()),
    }
    e
}

/// Human-readable rendering.
pub fn render_text(entries: &[PlanEntry]) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str("No Services or Ingresses are handled by Gantry.\n");
    }
    for e in entries {
        out.push_str(&format!(
            "{} {}/{} (class {}):\n",
            e.kind, e.namespace, e.name, e.class
        ));
        for w in &e.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }
        match &e.error {
            Some(err) => out.push_str(&format!("  error: {err}\n")),
            None if e.changes.is_empty() => out.push_str("  no changes\n"),
            None => {
                for c in &e.changes {
                    out.push_str(&format!("  {c}\n"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use gantry_model::provider::Action;

    use super::*;

    #[test]
    fn text_lists_changes_errors_and_no_ops() {
        let base = PlanEntry {
            kind: "Service".into(),
            namespace: "default".into(),
            name: "web".into(),
            class: "local".into(),
            changes: vec![],
            warnings: vec![],
            error: None,
        };
        let with_change = PlanEntry {
            changes: vec![Change {
                action: Action::Create,
                resource: "listener".into(),
                name: "g-web".into(),
                detail: "port 80".into(),
            }],
            ..base.clone()
        };
        let failed = PlanEntry {
            error: Some("invalid spec: x".into()),
            warnings: vec!["unknown annotation".into()],
            ..base.clone()
        };
        let text = render_text(&[base, with_change, failed]);
        assert!(
            text.contains("Service default/web (class local):\n  no changes"),
            "{text}"
        );
        assert!(text.contains("  create listener g-web: port 80"), "{text}");
        assert!(
            text.contains("  warning: unknown annotation\n  error: invalid spec: x"),
            "{text}"
        );
    }
}
