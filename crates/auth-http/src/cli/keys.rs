//! `keys generate`: a new JWT signing key pair.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use auth_crypto::{Asymmetric, GeneratedKey};
use clap::{Args, Subcommand, ValueEnum};
use secrecy::ExposeSecret;

/// `auth-http keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a signing key pair for JWT_PRIVATE_KEY (RS256: RSA 2048 bits, ES256: P-256,
    /// EdDSA: Ed25519). Without --out: the private then the public PEM on stdout, the kid
    /// on stderr.
    Generate(GenerateArgs),
}

/// Arguments of `keys generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Signing algorithm (the value of JWT_ALGORITHM).
    #[arg(long, value_enum, ignore_case = true)]
    pub alg: KeyAlg,
    /// Write DIR/jwt-<alg>-<kid>.key.pem (mode 0600) and DIR/jwt-<alg>-<kid>.pub.pem
    /// (0644) instead of printing the keys; never overwrites a file.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Algorithms `keys generate` makes keys for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyAlg {
    /// RSA 2048 bits, PKCS#1 v1.5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    Eddsa,
}

impl KeyAlg {
    fn asymmetric(self) -> Asymmetric {
        match self {
            Self::Rs256 => Asymmetric::Rs256,
            Self::Es256 => Asymmetric::Es256,
            Self::Eddsa => Asymmetric::EdDsa,
        }
    }
}

/// `JWT_ALGORITHM`'s spelling of `alg`.
fn env_name(alg: Asymmetric) -> &'static str {
    match alg {
        Asymmetric::Rs256 => "RS256",
        Asymmetric::Es256 => "ES256",
        Asymmetric::EdDsa => "EdDSA",
    }
}

/// Runs `keys …`: exit 0, or 1 with a message on stderr.
pub fn keys(command: &KeysCommand) -> ExitCode {
    let result = match command {
        KeysCommand::Generate(args) => generate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("auth-http: {message}");
            ExitCode::FAILURE
        }
    }
}

fn generate(args: &GenerateArgs) -> Result<(), String> {
    let key = auth_crypto::generate_key_pair(args.alg.asymmetric())
        .map_err(|e| format!("keys generate: {e}"))?;
    let alg = env_name(key.alg);
    match &args.out {
        None => {
            let pems = format!(
                "{}{}",
                with_newline(key.private_pem.expose_secret()),
                with_newline(&key.public_pem)
            );
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(pems.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("cannot write the keys to stdout: {e}"))?;
            // stderr, so that stdout holds the PEMs only and can go straight to a file.
            eprintln!("kid: {}", key.kid);
            eprintln!(
                "hint: JWT_ALGORITHM={alg} JWT_PRIVATE_KEY=\"<the PRIVATE KEY block>\" (saved to FILE: \"$(sed '/END PRIVATE KEY/q' FILE)\"); the PUBLIC KEY block is for JWT_PUBLIC_KEY during a rotation. Save with `umask 077` first, or use --out DIR (mode 0600)"
            );
        }
        Some(dir) => {
            let (private, public) = write_key_pair(dir, &key)?;
            let report = format!(
                "private key: {} (mode 0600)\npublic key:  {}\nkid: {}\nhint: JWT_ALGORITHM={alg} JWT_PRIVATE_KEY=\"$(cat {})\"\n",
                private.display(),
                public.display(),
                key.kid,
                private.display(),
            );
            std::io::stdout()
                .lock()
                .write_all(report.as_bytes())
                .map_err(|e| format!("cannot write to stdout: {e}"))?;
        }
    }
    Ok(())
}

fn with_newline(pem: &str) -> String {
    if pem.ends_with('\n') {
        pem.to_owned()
    } else {
        format!("{pem}\n")
    }
}

/// Writes `dir/jwt-<alg>-<kid>.key.pem` (mode 0600) and `dir/jwt-<alg>-<kid>.pub.pem`
/// (0644), creating `dir` if needed; returns their paths. Never overwrites: an existing
/// file of either name is an error and leaves both untouched.
pub fn write_key_pair(dir: &Path, key: &GeneratedKey) -> Result<(PathBuf, PathBuf), String> {
    if dir.exists() && !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let stem = format!("jwt-{}-{}", env_name(key.alg).to_ascii_lowercase(), key.kid);
    let private = dir.join(format!("{stem}.key.pem"));
    let public = dir.join(format!("{stem}.pub.pem"));
    for path in [&private, &public] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(format!(
                "{} already exists: not overwritten",
                path.display()
            ));
        }
    }
    create_new(&private, key.private_pem.expose_secret(), 0o600)?;
    if let Err(message) = create_new(&public, &key.public_pem, 0o644) {
        // Half a pair is of no use; and an orphan private key is one more secret lying around.
        let _ = fs::remove_file(&private);
        return Err(message);
    }
    Ok((private, public))
}

fn create_new(path: &Path, contents: &str, mode: u32) -> Result<(), String> {
    let failed = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{} already exists: not overwritten", path.display())
        } else {
            format!("cannot write {}: {e}", path.display())
        }
    };
    // `create_new` refuses an existing file (or symlink) atomically; the mode applies from
    // creation, so the private key is never readable by others, even for an instant.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(failed)?;
    // The umask may have removed bits: 0644 is asked for, not just allowed.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(failed)?;
    file.write_all(with_newline(contents).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed)
}
