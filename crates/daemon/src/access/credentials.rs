//! Making and checking secrets: Argon2id password hashes, random session ids and API tokens,
//! and the SHA-256 digests the store keeps of the latter.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use rand::RngCore as _;
use ticketing_core::secret::Secret;

/// A password shorter than this is refused.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The prefix of every per-user API token (`mspt_<id>_<secret>`).
const TOKEN_PREFIX: &str = "mspt_";

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `text`, lowercase hex: how the store knows session ids and API tokens (256-bit
/// random values, so a fast digest cannot be searched).
pub fn digest(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without an early exit on the first differing byte (`subtle`).
pub fn same(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

/// Why a password was refused (the message names the field, never the value).
pub fn password_problem(password: &str) -> Option<String> {
    let n = password.chars().count();
    (n < MIN_PASSWORD_CHARS)
        .then(|| format!("password: is {n} characters long (expected at least {MIN_PASSWORD_CHARS})"))
}

/// The Argon2id hash (PHC string, random salt, the crate's default cost) of a password.
pub fn hash_password(password: &Secret) -> Result<Secret, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| Secret::new(h.to_string()))
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the stored `hash`.
pub fn verify_password(hash: &Secret, password: &str) -> bool {
    PasswordHash::new(hash.expose())
        .is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Spends the time of one password check on nothing, so that a login for a user that does not
/// exist takes as long as one with a wrong password.
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<Secret> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password(&Secret::new(random_hex(16))).unwrap_or_else(|_| Secret::new("")));
    let _ = verify_password(hash, password);
}

/// A new API token: its public id and the whole token (shown once).
pub fn new_token() -> (String, Secret) {
    let id = random_hex(6);
    let token = Secret::new(format!("{TOKEN_PREFIX}{id}_{}", random_hex(32)));
    (id, token)
}

/// The public id of a presented API token, when it has the token's shape.
pub fn token_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password(&Secret::new("correct horse battery")).unwrap();
        assert!(h.expose().starts_with("$argon2id$"), "Argon2id PHC string");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery!"));
        assert!(!verify_password(&Secret::new("garbage"), "x"));
    }

    #[test]
    fn tokens_have_an_id_and_a_secret() {
        let (id, token) = new_token();
        assert_eq!(token_id(token.expose()), Some(id.as_str()));
        assert_eq!(token_id("mspt__x"), None);
        assert_eq!(token_id("Bearer"), None);
        assert_ne!(digest(token.expose()), token.expose());
        assert_eq!(digest("abc").len(), 64);
    }

    #[test]
    fn short_passwords_are_refused_naming_the_field() {
        assert_eq!(password_problem("short").unwrap(), "password: is 5 characters long (expected at least 12)");
        assert!(password_problem("twelve chars").is_none());
    }
}
