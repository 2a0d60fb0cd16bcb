//! KMS clients: timeouts and retries ([`ClientSettings`]), and the [`ClientSupplier`] the
//! multi-keyring builders use to get one client per region.
//!
//! Keyrings take an [`aws_sdk_kms::Client`] you build, so you keep full control of its
//! configuration. Clients made by [`DefaultClientSupplier`] come from `aws-config` (the usual
//! environment, profile and credential chain) with [`ClientSettings`] applied, whose defaults
//! bound every call so that an unreachable KMS gives an error instead of a hang.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_kms::config::Region;
use aws_sdk_kms::Client;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Timeouts and retry policy for KMS clients.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `connect_timeout` | 3 s | TCP + TLS connection establishment |
/// | `attempt_timeout` | 10 s | one HTTP attempt, from send to the whole response |
/// | `operation_timeout` | 30 s | one KMS call, all retries and back-off included |
/// | `max_attempts` | 3 | attempts per call (1 = no retry); throttling and transient errors are retried |
/// | `initial_backoff` | 1 s | first retry delay; later delays grow exponentially with jitter |
/// | `adaptive` | false | client-side rate limiting on throttling (the SDK's adaptive mode) |
///
/// With the defaults, a call to a KMS that refuses connections fails after the retries
/// (a few seconds), and one that accepts but never answers fails after 30 s at the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    /// Connection establishment timeout.
    pub connect_timeout: Duration,
    /// Timeout of one HTTP attempt.
    pub attempt_timeout: Duration,
    /// Timeout of a whole call including retries.
    pub operation_timeout: Duration,
    /// Attempts per call, at least 1.
    pub max_attempts: u32,
    /// First retry back-off.
    pub initial_backoff: Duration,
    /// Use the SDK's adaptive retry mode (client-side rate limiting) instead of standard.
    pub adaptive: bool,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            adaptive: false,
        }
    }
}

impl ClientSettings {
    /// The SDK timeout configuration.
    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build()
    }

    /// The SDK retry configuration.
    pub fn retry_config(&self) -> RetryConfig {
        let base = if self.adaptive {
            RetryConfig::adaptive()
        } else {
            RetryConfig::standard()
        };
        base.with_max_attempts(self.max_attempts.max(1))
            .with_initial_backoff(self.initial_backoff)
    }

    /// Apply these settings to a KMS client configuration you are building.
    pub fn apply(&self, builder: aws_sdk_kms::config::Builder) -> aws_sdk_kms::config::Builder {
        builder
            .timeout_config(self.timeout_config())
            .retry_config(self.retry_config())
    }

    /// Load the shared AWS configuration (environment, profiles, credential chain) with these
    /// settings applied.
    pub async fn load_sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(self.timeout_config())
            .retry_config(self.retry_config())
            .load()
            .await
    }
}

/// No KMS client could be supplied for a region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no KMS client for {}: {reason}", region.as_deref().map_or("the default region".to_owned(), |r| format!("region {r}")))]
pub struct ClientSupplierError {
    /// The region asked for (`None`: the default region).
    pub region: Option<String>,
    /// Why not.
    pub reason: String,
}

/// Supplies a KMS client per region, for the multi-keyring builders.
///
/// Called once per configured key while building (not per message). `region` is the
/// region of a key ARN, or `None` for alias names and bare key ids, which KMS resolves in the
/// client's own region.
pub trait ClientSupplier: Send + Sync {
    /// A client for `region` (`None`: the default region).
    fn client(&self, region: Option<&str>) -> Result<Client, ClientSupplierError>;
}

impl<T: ClientSupplier + ?Sized> ClientSupplier for Arc<T> {
    fn client(&self, region: Option<&str>) -> Result<Client, ClientSupplierError> {
        (**self).client(region)
    }
}

/// The default supplier: clients from one loaded `aws-config` [`SdkConfig`], with the region
/// overridden per call, cached per region.
pub struct DefaultClientSupplier {
    config: SdkConfig,
    cache: Mutex<HashMap<Option<String>, Client>>,
}

impl DefaultClientSupplier {
    /// Load the AWS configuration from the environment with default [`ClientSettings`].
    pub async fn from_env() -> Self {
        Self::from_env_with(&ClientSettings::default()).await
    }

    /// Load the AWS configuration from the environment with `settings`.
    pub async fn from_env_with(settings: &ClientSettings) -> Self {
        Self::from_sdk_config(settings.load_sdk_config().await)
    }

    /// Use an already-loaded configuration as is.
    pub fn from_sdk_config(config: SdkConfig) -> Self {
        Self {
            config,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl ClientSupplier for DefaultClientSupplier {
    fn client(&self, region: Option<&str>) -> Result<Client, ClientSupplierError> {
        let key = region.map(str::to_owned);
        // A poisoned lock only means another thread panicked while inserting a clone; the
        // map is still consistent.
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let mut builder = aws_sdk_kms::config::Builder::from(&self.config);
        match region {
            Some("") => {
                return Err(ClientSupplierError {
                    region: key,
                    reason: "the region is empty".into(),
                })
            }
            Some(r) => builder = builder.region(Region::new(r.to_owned())),
            None if self.config.region().is_none() => {
                return Err(ClientSupplierError {
                    region: None,
                    reason: "no default region is configured (set AWS_REGION or use key ARNs)"
                        .into(),
                })
            }
            None => {}
        }
        let client = Client::from_conf(builder.build());
        cache.insert(key, client.clone());
        Ok(client)
    }
}

impl core::fmt::Debug for DefaultClientSupplier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DefaultClientSupplier")
            .field("default_region", &self.config.region())
            .finish_non_exhaustive()
    }
}

/// A supplier of clients you configured yourself, one per region.
///
/// ```no_run
/// # async fn f(west: aws_sdk_kms::Client, east: aws_sdk_kms::Client) {
/// use keyring_kms::StaticClientSupplier;
/// let supplier = StaticClientSupplier::new()
///     .with_client("us-west-2", west.clone())
///     .with_client("us-east-1", east)
///     .with_default(west);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticClientSupplier {
    clients: HashMap<String, Client>,
    default: Option<Client>,
}

impl StaticClientSupplier {
    /// An empty supplier.
    pub fn new() -> Self {
        Self::default()
    }

    /// The client to use for `region`.
    pub fn with_client(mut self, region: impl Into<String>, client: Client) -> Self {
        self.clients.insert(region.into(), client);
        self
    }

    /// The client for identifiers that name no region (alias names, bare key ids).
    pub fn with_default(mut self, client: Client) -> Self {
        self.default = Some(client);
        self
    }
}

impl ClientSupplier for StaticClientSupplier {
    fn client(&self, region: Option<&str>) -> Result<Client, ClientSupplierError> {
        let found = match region {
            Some(r) => self.clients.get(r),
            None => self.default.as_ref(),
        };
        found.cloned().ok_or_else(|| ClientSupplierError {
            region: region.map(str::to_owned),
            reason: "this StaticClientSupplier holds no client for it".into(),
        })
    }
}

/// The region a client is configured for, if any.
pub(crate) fn client_region(client: &Client) -> Option<String> {
    client.config().region().map(|r| r.as_ref().to_owned())
}
