//! Leader election with a coordination.k8s.io Lease: acquire, renew, release; losing it stops
//! reconciling.
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use std::time::Duration;

/// Timings of the election.
#[derive(Clone, Debug)]
pub struct LeaseTimings {
    /// How long a lease stays valid without renewal.
    pub duration: Duration,
    /// How often the holder renews (well under `duration`).
    pub renew_every: Duration,
}

impl Default for LeaseTimings {
    fn default() -> Self {
        LeaseTimings {
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }
}

/// One candidate for the Lease `name` in `namespace`.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: LeaseTimings,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("reading or writing Lease {namespace}/{name}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl Elector {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timings: LeaseTimings,
    ) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            timings,
        }
    }

    fn error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            namespace: self.api.namespace().unwrap_or_default().to_string(),
            name: self.name.clone(),
            source,
        }
    }

    /// Try once to hold the Lease: `true` when we hold it now.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaderError> {
        let now = Timestamp::now();
        let existing = self.api.get_opt(&self.name).await.map_err(|e| self.error(e))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(self.error(e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let ours = spec.holder_identity.as_deref() == Some(&self.identity);
        let free = spec.holder_identity.as_deref().is_none_or(str::is_empty) || expired(&spec, now);
        if !ours && !free {
            return Ok(false);
        }
        let acquired = if ours {
            spec.acquire_time.map_or(now, |t| t.0)
        } else {
            now
        };
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
        lease.spec = Some(self.spec(acquired, now, transitions));
        // replace carries the resourceVersion we read: a concurrent writer makes this a 409.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.timings.duration.as_secs() as i32),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Wait until we hold the Lease.
    pub async fn acquire(&self) {
        let mut tick = tokio::time::interval(self.timings.renew_every);
        loop {
            tick.tick().await;
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => tracing::debug!(lease = %self.name, "another replica leads"),
                Err(error) => tracing::warn!(error = %super::error::full_chain(&error), "leader election"),
            }
        }
    }

    /// Renew until a renewal fails for longer than the lease lasts, or someone else took it;
    /// returns then (leadership lost).
    pub async fn hold(&self) {
        let mut tick = tokio::time::interval(self.timings.renew_every);
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::warn!(lease = %self.name, "leadership lost to another replica");
                    return;
                }
                Err(error) => {
                    tracing::warn!(error = %super::error::full_chain(&error), "could not renew the Lease");
                    if last_renewal.elapsed() >= self.timings.duration {
                        return;
                    }
                }
            }
        }
    }

    /// Give the Lease up so another replica takes over at once.
    pub async fn release(&self) -> Result<(), LeaderError> {
        let Some(mut lease) = self.api.get_opt(&self.name).await.map_err(|e| self.error(e))? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }
}

/// Has the holder failed to renew within the lease duration?
pub fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    renewed.0 + duration < now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry() {
        let now = Timestamp::now();
        let spec = |ago: i64, duration: i32| LeaseSpec {
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(ago))),
            lease_duration_seconds: Some(duration),
            ..Default::default()
        };
        assert!(!expired(&spec(5, 15), now));
        assert!(expired(&spec(20, 15), now));
        assert!(expired(&LeaseSpec::default(), now));
    }
}
