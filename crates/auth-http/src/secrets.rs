//! The embedded default's secrets: with no `SECRET_KEY` / `JWT_SECRET_KEY`, they are
//! generated once and kept in `{AUTH_DATA_DIR}/secrets.json` (mode 0600), so users,
//! sessions and tokens survive a restart.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::{Deserialize, Serialize};

/// The root secrets in force, and where they came from.
pub struct Secrets {
    /// Root of the personal-data keys and the pepper.
    pub secret_key: SecretBox<Vec<u8>>,
    /// HS256 key.
    pub jwt_secret_key: SecretBox<Vec<u8>>,
    /// The file holding generated secrets, when any was generated.
    pub generated_in: Option<PathBuf>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("generated_in", &self.generated_in)
            .finish_non_exhaustive()
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    secret_key: Option<String>,
    jwt_secret_key: Option<String>,
}

/// Why the secrets could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what we wrote.
    #[error(
        "{0}: not a valid secrets file (delete it to generate new secrets, which logs everyone out)"
    )]
    Corrupt(PathBuf),
    /// The random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretsError + '_ {
    move |source| SecretsError::Io {
        path: path.to_owned(),
        source,
    }
}

fn generate() -> Result<String, SecretsError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SecretsError::Random(e.to_string()))?;
    Ok(STANDARD.encode(bytes))
}

/// The configured secrets, or the ones kept in `data_dir`, generating what is missing.
pub fn load(
    data_dir: &Path,
    secret_key: Option<&SecretString>,
    jwt_secret_key: Option<&SecretString>,
) -> Result<Secrets, SecretsError> {
    let given = |s: Option<&SecretString>| {
        s.map(|s| SecretBox::new(Box::new(s.expose_secret().as_bytes().to_vec())))
    };
    if let (Some(secret), Some(jwt)) = (given(secret_key), given(jwt_secret_key)) {
        return Ok(Secrets {
            secret_key: secret,
            jwt_secret_key: jwt,
            generated_in: None,
        });
    }
    let path = data_dir.join("secrets.json");
    let mut stored: Stored = match fs::read(&path) {
        Ok(raw) => serde_json::from_slice(&raw).map_err(|_| SecretsError::Corrupt(path.clone()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
        Err(e) => return Err(io(&path)(e)),
    };
    let mut changed = false;
    if secret_key.is_none() && stored.secret_key.is_none() {
        stored.secret_key = Some(generate()?);
        changed = true;
    }
    if jwt_secret_key.is_none() && stored.jwt_secret_key.is_none() {
        stored.jwt_secret_key = Some(generate()?);
        changed = true;
    }
    if changed {
        write_private(data_dir, &path, &stored)?;
    }
    let decode = |s: &Option<String>| -> Result<SecretBox<Vec<u8>>, SecretsError> {
        let raw = s
            .as_deref()
            .ok_or_else(|| SecretsError::Corrupt(path.clone()))?;
        let bytes = STANDARD
            .decode(raw)
            .map_err(|_| SecretsError::Corrupt(path.clone()))?;
        Ok(SecretBox::new(Box::new(bytes)))
    };
    Ok(Secrets {
        secret_key: match given(secret_key) {
            Some(s) => s,
            None => decode(&stored.secret_key)?,
        },
        jwt_secret_key: match given(jwt_secret_key) {
            Some(s) => s,
            None => decode(&stored.jwt_secret_key)?,
        },
        generated_in: Some(path.clone()),
    })
}

/// Writes the file with mode 0600 (in a 0700 directory it creates), atomically.
fn write_private(dir: &Path, path: &Path, stored: &Stored) -> Result<(), SecretsError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    let tmp = path.with_extension("json.tmp");
    let body =
        serde_json::to_vec_pretty(stored).map_err(|_| SecretsError::Corrupt(path.to_owned()))?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(&body).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_kept_private_and_reused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let first = load(&data, None, None)?;
        let mode = fs::metadata(data.join("secrets.json"))?
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let second = load(&data, None, None)?;
        assert_eq!(
            first.secret_key.expose_secret(),
            second.secret_key.expose_secret()
        );
        assert_eq!(
            first.jwt_secret_key.expose_secret(),
            second.jwt_secret_key.expose_secret()
        );
        assert_eq!(first.secret_key.expose_secret().len(), 32);
        Ok(())
    }

    #[test]
    fn configured_secrets_win_and_nothing_is_written() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let s = SecretString::from("a".repeat(40));
        let loaded = load(dir.path(), Some(&s), Some(&s))?;
        assert!(loaded.generated_in.is_none());
        assert!(!dir.path().join("secrets.json").exists());
        Ok(())
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_new_secrets() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("secrets.json"), "not json")?;
        assert!(matches!(
            load(dir.path(), None, None),
            Err(SecretsError::Corrupt(_))
        ));
        Ok(())
    }
}
