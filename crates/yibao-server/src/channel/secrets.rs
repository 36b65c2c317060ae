//! Channel secrets at rest. HMAC needs the secret itself on the server, so it cannot be hashed;
//! it is sealed with the server's master key (ChaCha20-Poly1305) so that a database dump alone does
//! not reveal it. Without a master key (the demo), secrets are stored marked `plain:` and the server
//! says so at start.

use std::fmt;

use chacha20poly1305::aead::Aead;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};

/// Longest channel secret accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 256;
/// Shortest: 128 bits of a random hex or base64 string.
pub const MIN_SECRET_BYTES: usize = 16;

/// A channel's HMAC secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelSecret(Vec<u8>);

impl ChannelSecret {
    pub fn new(bytes: Vec<u8>) -> Result<ChannelSecret, &'static str> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err("渠道密钥长度应为16至256字节");
        }
        Ok(ChannelSecret(bytes))
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ChannelSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelSecret(***)")
    }
}

/// The 32-byte master key. `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// From 64 hex characters.
    pub fn from_hex(text: &str) -> Result<MasterKey, &'static str> {
        let bytes = hex::decode(text.trim()).map_err(|_| "主密钥应为64位十六进制字符")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "主密钥应为64位十六进制字符")?;
        Ok(MasterKey(key))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// Seals a secret for storage.
pub fn seal(secret: &ChannelSecret, key: Option<&MasterKey>) -> Result<String, &'static str> {
    let Some(key) = key else {
        return Ok(format!("plain:{}", hex::encode(secret.expose())));
    };
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
    let random = uuid::Uuid::new_v4();
    let nonce_bytes = &random.as_bytes()[..12];
    let sealed = cipher
        .encrypt(Nonce::from_slice(nonce_bytes), secret.expose())
        .map_err(|_| "渠道密钥加密失败")?;
    Ok(format!(
        "v1:{}:{}",
        hex::encode(nonce_bytes),
        hex::encode(sealed)
    ))
}

/// Opens a stored secret.
pub fn open(stored: &str, key: Option<&MasterKey>) -> Result<ChannelSecret, &'static str> {
    if let Some(plain) = stored.strip_prefix("plain:") {
        return hex::decode(plain)
            .map(ChannelSecret)
            .map_err(|_| "渠道密钥已损坏");
    }
    let rest = stored.strip_prefix("v1:").ok_or("渠道密钥格式未知")?;
    let key = key.ok_or("渠道密钥已加密，但未配置主密钥 YIBAO_MASTER_KEY")?;
    let (nonce_hex, sealed_hex) = rest.split_once(':').ok_or("渠道密钥已损坏")?;
    let nonce = hex::decode(nonce_hex).map_err(|_| "渠道密钥已损坏")?;
    let sealed = hex::decode(sealed_hex).map_err(|_| "渠道密钥已损坏")?;
    if nonce.len() != 12 {
        return Err("渠道密钥已损坏");
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key.0));
    cipher
        .decrypt(Nonce::from_slice(&nonce), sealed.as_ref())
        .map(ChannelSecret)
        .map_err(|_| "渠道密钥无法用当前主密钥解开")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_round_trip_and_hide() {
        let key = MasterKey::from_hex(&"ab".repeat(32)).unwrap();
        let secret = ChannelSecret::new(b"demo-secret-0123456789".to_vec()).unwrap();
        let stored = seal(&secret, Some(&key)).unwrap();
        assert!(stored.starts_with("v1:"));
        assert!(!stored.contains(&hex::encode(b"demo-secret")));
        assert_eq!(open(&stored, Some(&key)).unwrap(), secret);
        let other = MasterKey::from_hex(&"cd".repeat(32)).unwrap();
        assert!(open(&stored, Some(&other)).is_err());
        assert!(open(&stored, None).is_err());
        let plain = seal(&secret, None).unwrap();
        assert_eq!(open(&plain, None).unwrap(), secret);
        assert_eq!(format!("{secret:?}"), "ChannelSecret(***)");
        assert_eq!(format!("{key:?}"), "MasterKey(***)");
        assert!(ChannelSecret::new(b"short".to_vec()).is_err());
    }
}
