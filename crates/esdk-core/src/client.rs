//! The client: configuration (commitment policy, EDK limit) and the one-shot encrypt and
//! decrypt API, async and blocking.

use crate::cmm::{
    CryptographicMaterialsManager, DecryptionMaterialsRequest, DefaultCmm,
    EncryptionMaterialsRequest,
};
use crate::context::{self, EncryptionContext};
use crate::decrypt::MessageDecryptor;
use crate::encrypt::{ciphertext_len, MessageEncryptor};
use crate::error::{Error, Result};
use crate::format::header::{Header, ParsedHeader};
use crate::keyring::Keyring;
use crate::suite::{AlgorithmSuite, CommitmentPolicy};
use std::sync::Arc;

/// The default frame length.
pub const DEFAULT_FRAME_LENGTH: u32 = 4096;

/// Where materials come from: a keyring (wrapped in the default CMM) or a CMM.
#[derive(Clone)]
pub struct MaterialsSource(Arc<dyn CryptographicMaterialsManager>);

impl MaterialsSource {
    /// Use `keyring` through the default CMM.
    pub fn keyring(keyring: impl Keyring + 'static) -> Self {
        Self(Arc::new(DefaultCmm::new(Arc::new(keyring))))
    }

    /// Use a CMM directly.
    pub fn cmm(cmm: impl CryptographicMaterialsManager + 'static) -> Self {
        Self(Arc::new(cmm))
    }

    /// The CMM behind this source.
    pub fn as_cmm(&self) -> &Arc<dyn CryptographicMaterialsManager> {
        &self.0
    }
}

impl From<Arc<dyn Keyring>> for MaterialsSource {
    fn from(keyring: Arc<dyn Keyring>) -> Self {
        Self(Arc::new(DefaultCmm::new(keyring)))
    }
}

impl From<Arc<dyn CryptographicMaterialsManager>> for MaterialsSource {
    fn from(cmm: Arc<dyn CryptographicMaterialsManager>) -> Self {
        Self(cmm)
    }
}

impl core::fmt::Debug for MaterialsSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MaterialsSource")
    }
}

/// Per-message encrypt settings.
#[derive(Debug, Clone)]
pub struct EncryptOptions {
    /// The encryption context.
    pub encryption_context: EncryptionContext,
    /// The suite; `None` picks the policy's default.
    pub suite: Option<AlgorithmSuite>,
    /// Frame length in bytes (1 ..= 2^32-1; other SDKs want a multiple of 16).
    pub frame_length: u32,
    /// An upper bound on the plaintext length, for streams of unknown length.
    pub plaintext_length_bound: Option<u64>,
}

impl Default for EncryptOptions {
    fn default() -> Self {
        Self {
            encryption_context: EncryptionContext::new(),
            suite: None,
            frame_length: DEFAULT_FRAME_LENGTH,
            plaintext_length_bound: None,
        }
    }
}

impl EncryptOptions {
    /// Set the encryption context.
    pub fn with_encryption_context(mut self, context: EncryptionContext) -> Self {
        self.encryption_context = context;
        self
    }

    /// Set the suite.
    pub fn with_suite(mut self, suite: AlgorithmSuite) -> Self {
        self.suite = Some(suite);
        self
    }

    /// Set the frame length.
    pub fn with_frame_length(mut self, frame_length: u32) -> Self {
        self.frame_length = frame_length;
        self
    }

    /// Declare an upper bound on the plaintext length.
    pub fn with_plaintext_length_bound(mut self, bound: u64) -> Self {
        self.plaintext_length_bound = Some(bound);
        self
    }
}

/// Per-message decrypt settings.
#[derive(Debug, Clone, Default)]
pub struct DecryptOptions {
    /// The encryption context the caller expects (reproduced context). Required-context
    /// keys that were not stored in the message must be supplied here.
    pub reproduced_encryption_context: Option<EncryptionContext>,
    /// Fail right after the header if the message is signed.
    pub unsigned_only: bool,
}

impl DecryptOptions {
    /// Supply the reproduced encryption context.
    pub fn with_reproduced_encryption_context(mut self, context: EncryptionContext) -> Self {
        self.reproduced_encryption_context = Some(context);
        self
    }

    /// Refuse signed messages.
    pub fn unsigned_only(mut self) -> Self {
        self.unsigned_only = true;
        self
    }
}

/// The result of encrypting.
#[derive(Debug, Clone)]
pub struct EncryptOutput {
    /// The complete message.
    pub ciphertext: Vec<u8>,
    /// The header written.
    pub header: Header,
    /// The encryption context used (including any the CMM added).
    pub encryption_context: EncryptionContext,
    /// The suite used.
    pub suite: AlgorithmSuite,
}

/// The result of decrypting.
#[derive(Debug, Clone)]
pub struct DecryptOutput {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The parsed header.
    pub header: Header,
    /// The encryption context (stored plus reproduced).
    pub encryption_context: EncryptionContext,
    /// The suite.
    pub suite: AlgorithmSuite,
}

/// Configuration shared by every message a program encrypts or decrypts.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    commitment_policy: CommitmentPolicy,
    max_encrypted_data_keys: Option<u16>,
    threads: Option<usize>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientBuilder {
    commitment_policy: CommitmentPolicy,
    max_encrypted_data_keys: Option<u16>,
    threads: Option<usize>,
}

impl ClientBuilder {
    /// Set the commitment policy (default: require encrypt, require decrypt).
    pub fn commitment_policy(mut self, policy: CommitmentPolicy) -> Self {
        self.commitment_policy = policy;
        self
    }

    /// Limit the EDKs a message may carry (default: no limit beyond the format's 65535).
    pub fn max_encrypted_data_keys(mut self, max: u16) -> Self {
        self.max_encrypted_data_keys = Some(max);
        self
    }

    /// Threads one large message may use for its frames (default: the available cores).
    /// `1` keeps all work on the calling thread.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Build the client. A limit of zero EDKs or zero threads is refused.
    pub fn build(self) -> Result<Client> {
        if self.max_encrypted_data_keys == Some(0) {
            return Err(Error::Config(
                "max encrypted data keys must be at least 1".into(),
            ));
        }
        if self.threads == Some(0) {
            return Err(Error::Config("threads must be at least 1".into()));
        }
        Ok(Client {
            commitment_policy: self.commitment_policy,
            max_encrypted_data_keys: self.max_encrypted_data_keys,
            threads: self.threads,
        })
    }
}

impl Client {
    /// A client with the defaults: `RequireEncryptRequireDecrypt`, no EDK limit.
    pub fn new() -> Self {
        Self {
            commitment_policy: CommitmentPolicy::default(),
            max_encrypted_data_keys: None,
            threads: None,
        }
    }

    /// A builder for other settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The commitment policy.
    pub fn commitment_policy(&self) -> CommitmentPolicy {
        self.commitment_policy
    }

    /// The EDK limit.
    pub fn max_encrypted_data_keys(&self) -> Option<u16> {
        self.max_encrypted_data_keys
    }

    /// Threads one large message may use for its frames (the available cores unless set).
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(crate::parallel::available_threads)
    }

    /// Get and check encryption materials for a message (shared by one-shot and streaming).
    pub async fn encryption_materials(
        &self,
        source: &MaterialsSource,
        options: &EncryptOptions,
        plaintext_length: Option<u64>,
    ) -> Result<crate::materials::EncryptionMaterials> {
        context::check_no_reserved_keys(&options.encryption_context)?;
        if options.frame_length == 0 {
            return Err(Error::Config("frame length must be at least 1".into()));
        }
        let policy = self.commitment_policy;
        if let Some(suite) = options.suite {
            if !policy.allows_encrypt(suite) {
                return Err(Error::SuiteNotAllowed { suite, policy });
            }
        }
        let request = EncryptionMaterialsRequest {
            encryption_context: options.encryption_context.clone(),
            suite: options.suite,
            commitment_policy: policy,
            max_plaintext_length: plaintext_length.or(options.plaintext_length_bound),
            required_encryption_context_keys: Vec::new(),
        };
        let materials = source.as_cmm().get_encryption_materials(request).await?;
        materials.validate()?;
        if !policy.allows_encrypt(materials.suite()) {
            return Err(Error::SuiteNotAllowed {
                suite: materials.suite(),
                policy,
            });
        }
        if let Some(max) = self.max_encrypted_data_keys {
            let count = materials.encrypted_data_keys().len();
            if count > usize::from(max) {
                return Err(Error::TooManyEncryptedDataKeys { count, max });
            }
        }
        Ok(materials)
    }

    /// Encrypt `plaintext` in one call.
    pub async fn encrypt(
        &self,
        source: &MaterialsSource,
        plaintext: &[u8],
        options: &EncryptOptions,
    ) -> Result<EncryptOutput> {
        let len = plaintext.len() as u64;
        if let Some(bound) = options.plaintext_length_bound {
            if len > bound {
                return Err(Error::PlaintextTooLong { bound });
            }
        }
        let materials = self
            .encryption_materials(source, options, Some(len))
            .await?;
        let frame_length = options.frame_length;
        let mut out = Vec::new();
        let mut encryptor = MessageEncryptor::new(&materials, frame_length, &mut out)?;
        // Size the output once: header, every frame, and the largest footer.
        let total = ciphertext_len(out.len(), len, frame_length, 2 + 104)
            .and_then(|t| usize::try_from(t).ok())
            .ok_or(Error::Config("message too large for this platform".into()))?;
        out.reserve_exact(total - out.len());
        crate::parallel::encrypt_body(&mut encryptor, plaintext, &mut out, self.threads())?;
        let header = encryptor.header().clone();
        encryptor.finish(&mut out)?;
        Ok(EncryptOutput {
            ciphertext: out,
            header,
            encryption_context: materials.encryption_context().clone(),
            suite: materials.suite(),
        })
    }

    /// Parse a header and get decryption materials for it (shared by one-shot and streaming).
    pub async fn decryption_materials(
        &self,
        source: &MaterialsSource,
        parsed: &ParsedHeader,
        options: &DecryptOptions,
    ) -> Result<crate::materials::DecryptionMaterials> {
        let header = &parsed.header;
        let policy = self.commitment_policy;
        if !policy.allows_decrypt(header.suite) {
            return Err(Error::SuiteNotAllowed {
                suite: header.suite,
                policy,
            });
        }
        if options.unsigned_only && header.suite.is_signed() {
            return Err(Error::SignedMessageRefused(header.suite));
        }
        let request = DecryptionMaterialsRequest {
            suite: header.suite,
            commitment_policy: policy,
            encrypted_data_keys: header.encrypted_data_keys.clone(),
            encryption_context: header.encryption_context.clone(),
            reproduced_encryption_context: options.reproduced_encryption_context.clone(),
        };
        let materials = source.as_cmm().decrypt_materials(request).await?;
        materials.validate()?;
        if materials.suite() != header.suite || !policy.allows_decrypt(materials.suite()) {
            return Err(Error::SuiteNotAllowed {
                suite: materials.suite(),
                policy,
            });
        }
        Ok(materials)
    }

    /// Decrypt a whole message. Nothing is returned unless every frame, the header and (for
    /// signed suites) the signature verified.
    pub async fn decrypt(
        &self,
        source: &MaterialsSource,
        message: &[u8],
        options: &DecryptOptions,
    ) -> Result<DecryptOutput> {
        let parsed = Header::parse(message, self.max_encrypted_data_keys)?
            .ok_or(Error::Truncated("the header is incomplete"))?;
        let materials = self.decryption_materials(source, &parsed, options).await?;
        let mut decryptor = MessageDecryptor::new(&parsed, message, &materials)?;
        let mut pos = parsed.total_len;
        // Plaintext is never longer than the ciphertext, so this bounds the allocation by the
        // input and avoids reallocating.
        // Wiped if anything below fails (a bad frame later on, a bad signature, trailing
        // bytes): plaintext that is not released is not left in freed memory either.
        let mut plaintext = zeroize::Zeroizing::new(Vec::with_capacity(message.len() - pos));
        pos = crate::parallel::decrypt_body(
            &mut decryptor,
            message,
            pos,
            parsed.header.frame_length,
            &mut plaintext,
            self.threads(),
        )?;
        let footer_len = decryptor
            .finish(&message[pos..])?
            .ok_or(Error::Truncated("the signature footer is incomplete"))?;
        pos += footer_len;
        if pos != message.len() {
            return Err(Error::TrailingBytes(message.len() - pos));
        }
        Ok(DecryptOutput {
            plaintext: std::mem::take(&mut *plaintext),
            header: parsed.header,
            encryption_context: materials.encryption_context().clone(),
            suite: materials.suite(),
        })
    }

    /// [`encrypt`](Self::encrypt) without an async runtime. For keyrings that need one (KMS),
    /// use the async API from within that runtime instead.
    pub fn encrypt_blocking(
        &self,
        source: &MaterialsSource,
        plaintext: &[u8],
        options: &EncryptOptions,
    ) -> Result<EncryptOutput> {
        pollster::block_on(self.encrypt(source, plaintext, options))
    }

    /// [`decrypt`](Self::decrypt) without an async runtime.
    pub fn decrypt_blocking(
        &self,
        source: &MaterialsSource,
        message: &[u8],
        options: &DecryptOptions,
    ) -> Result<DecryptOutput> {
        pollster::block_on(self.decrypt(source, message, options))
    }
}
