//! The JWT secret when none is configured: generated once and kept in the data directory, so
//! tokens survive restarts of a server that was started with nothing set.

use std::fs;
use std::io::Write;
use std::path::Path;

use chat_core::clock::random_bytes;

const FILE: &str = "jwt_secret";

/// Reads the secret kept in `data_dir`, creating it (readable by the owner only) if missing.
pub(crate) fn load_or_create(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(FILE);
    match fs::read_to_string(&path) {
        Ok(secret) => return Ok(secret.trim().to_owned()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    tracing::warn!(
        path = %path.display(),
        "no CHAT_JWT_SECRET set: generated one and stored it in the data directory; set \
         CHAT_JWT_SECRET when running several nodes"
    );
    Ok(secret)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_secret_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = super::load_or_create(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(super::load_or_create(dir.path()).unwrap(), first);
    }
}
