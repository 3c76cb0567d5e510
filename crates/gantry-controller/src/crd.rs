//! `gantry crd`: Gantry's CustomResourceDefinitions as one YAML stream,
//! ready for `kubectl apply -f -` and for the chart's `crds/` directory.

use gantry_model::{LoadBalancerClass, local::LocalLoadBalancer};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD Gantry owns, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![LoadBalancerClass::crd(), LocalLoadBalancer::crd()]
}

/// The CRDs as YAML documents separated by `---`.
pub fn yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for (i, crd) in crds().iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml::to_string(crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn yaml_round_trips_every_crd() {
        let text = yaml().expect("serialises");
        let docs: Vec<CustomResourceDefinition> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| CustomResourceDefinition::deserialize(d).expect("valid CRD document"))
            .collect();
        assert_eq!(docs, crds());
        let names: Vec<_> = docs
            .iter()
            .filter_map(|d| d.metadata.name.clone())
            .collect();
        assert_eq!(
            names,
            [
                "loadbalancerclasses.gantry.dev",
                "localloadbalancers.gantry.dev"
            ]
        );
    }
}
