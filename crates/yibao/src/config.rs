//! Configuration, layered: built-in defaults, then the TOML file (`--config` or `YIBAO_CONFIG`), then
//! the environment (`YIBAO_*`), then command-line flags. `yibao.example.toml` documents every key.
//!
//! The database URL may hold a password: it lives in [`DatabaseUrl`], whose `Debug` and `Display`
//! hide it, and it should come from the file or the environment, not from argv.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use yibao_storage::DatabaseUrl;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://yibao.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_LOG: &str = "info";
pub const MIN_BODY_LIMIT_BYTES: usize = 1024;
pub const MAX_BODY_LIMIT_BYTES: usize = 64 * 1024 * 1024;
/// A configuration file larger than this is refused unread.
pub const MAX_CONFIG_FILE_BYTES: u64 = 256 * 1024;

/// The settled configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub listen: SocketAddr,
    pub body_limit_bytes: usize,
    /// A `tracing` filter such as `info` or `yibao_server=debug,info`.
    pub log: String,
    /// Whether the database URL came from a command-line flag (then a password in it is in argv).
    pub database_url_from_flag: bool,
}

/// The file's layout. Unknown keys are refused so a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    listen: Option<String>,
    body_limit_bytes: Option<usize>,
    log: Option<String>,
}

/// What the command line said.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("无法读取配置文件 {path}：{reason}")]
    Read { path: String, reason: String },
    #[error("配置文件 {path} 格式有误：{reason}")]
    Parse { path: String, reason: String },
    #[error("配置项 {key} 无效：{reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Config {
    /// Resolves the layers. `env` is a lookup so tests need not touch the process environment.
    pub fn load(
        flags: &Flags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file_path = flags
            .config
            .clone()
            .or_else(|| env("YIBAO_CONFIG").map(PathBuf::from));
        let file = match &file_path {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };

        let database_url_from_flag = flags.database_url.is_some();
        let database_url = flags
            .database_url
            .clone()
            .or_else(|| env("YIBAO_DATABASE_URL"))
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let database_url = DatabaseUrl::parse(&database_url).map_err(|e| ConfigError::Invalid {
            key: "database_url",
            reason: e.to_string(),
        })?;

        let listen = flags
            .listen
            .clone()
            .or_else(|| env("YIBAO_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen.trim().parse().map_err(|_| ConfigError::Invalid {
            key: "listen",
            reason: format!("“{listen}”不是有效的地址，应为 IP:端口，如 127.0.0.1:8080"),
        })?;

        let body_limit_bytes = match env("YIBAO_BODY_LIMIT_BYTES") {
            Some(text) => text.trim().parse().map_err(|_| ConfigError::Invalid {
                key: "body_limit_bytes",
                reason: format!("“{text}”不是整数"),
            })?,
            None => file
                .body_limit_bytes
                .unwrap_or(yibao_server::DEFAULT_BODY_LIMIT_BYTES),
        };
        if !(MIN_BODY_LIMIT_BYTES..=MAX_BODY_LIMIT_BYTES).contains(&body_limit_bytes) {
            return Err(ConfigError::Invalid {
                key: "body_limit_bytes",
                reason: format!("应在 {MIN_BODY_LIMIT_BYTES} 至 {MAX_BODY_LIMIT_BYTES} 之间"),
            });
        }

        let log = env("YIBAO_LOG")
            .or(file.log)
            .unwrap_or_else(|| DEFAULT_LOG.to_owned());

        Ok(Config {
            database_url,
            listen,
            body_limit_bytes,
            log,
            database_url_from_flag,
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let shown = path.display().to_string();
    let read_error = |reason: String| ConfigError::Read {
        path: shown.clone(),
        reason,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| read_error(e.to_string()))?
        .len();
    if size > MAX_CONFIG_FILE_BYTES {
        return Err(read_error(format!("文件超过 {MAX_CONFIG_FILE_BYTES} 字节")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: shown.clone(),
        reason: e.message().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let c = Config::load(&Flags::default(), &env_of(&[])).unwrap();
        assert_eq!(c.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.body_limit_bytes, yibao_server::DEFAULT_BODY_LIMIT_BYTES);
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yibao.toml");
        std::fs::write(
            &path,
            "database_url = \"postgres://file@127.0.0.1/db\"\nlisten = \"127.0.0.1:9000\"\nbody_limit_bytes = 4096\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(path.clone()),
            ..Flags::default()
        };
        let c = Config::load(&flags, &env_of(&[])).unwrap();
        assert_eq!(c.database_url.expose(), "postgres://file@127.0.0.1/db");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.body_limit_bytes, 4096);

        let env = env_of(&[
            ("YIBAO_DATABASE_URL", "sqlite://env.db"),
            ("YIBAO_LISTEN", "127.0.0.1:9001"),
        ]);
        let c = Config::load(&flags, &env).unwrap();
        assert_eq!(c.database_url.expose(), "sqlite://env.db");
        assert_eq!(c.listen.port(), 9001);
        assert!(!c.database_url_from_flag);

        let flags = Flags {
            config: Some(path),
            database_url: Some("sqlite://flag.db".into()),
            listen: Some("127.0.0.1:9002".into()),
        };
        let c = Config::load(&flags, &env).unwrap();
        assert_eq!(c.database_url.expose(), "sqlite://flag.db");
        assert_eq!(c.listen.port(), 9002);
        assert!(c.database_url_from_flag);
    }

    #[test]
    fn refuses_bad_values_and_unknown_keys() {
        let env = env_of(&[("YIBAO_DATABASE_URL", "mysql://x")]);
        let err = Config::load(&Flags::default(), &env).unwrap_err();
        assert!(err.to_string().contains("不支持的数据库地址类型"), "{err}");

        let env = env_of(&[("YIBAO_LISTEN", "nowhere")]);
        assert!(Config::load(&Flags::default(), &env).is_err());

        let env = env_of(&[("YIBAO_BODY_LIMIT_BYTES", "10")]);
        assert!(Config::load(&Flags::default(), &env).is_err());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "databse_url = \"sqlite://typo.db\"\n").unwrap();
        let flags = Flags {
            config: Some(path),
            ..Flags::default()
        };
        let err = Config::load(&flags, &env_of(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");

        let huge = dir.path().join("huge.toml");
        let line = "# comment\n".repeat((MAX_CONFIG_FILE_BYTES as usize) / 10 + 1);
        std::fs::write(&huge, line).unwrap();
        let flags = Flags {
            config: Some(huge),
            ..Flags::default()
        };
        let err = Config::load(&flags, &env_of(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }

    #[test]
    fn debug_hides_the_password() {
        let env = env_of(&[("YIBAO_DATABASE_URL", "postgres://yibao:hunter2@db/yibao")]);
        let c = Config::load(&Flags::default(), &env).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
