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
pub const DEFAULT_PAYMENT_BATCH_MAX: usize = 32;
pub const MIN_ORDER_HOLD_SECONDS: i64 = 60;
pub const MAX_ORDER_HOLD_SECONDS: i64 = 24 * 3600;
/// Longest retention of delivered outbox events, days (ten years).
pub const MAX_OUTBOX_DELIVERED_KEPT_DAYS: i64 = 3650;
/// A configuration file larger than this is refused unread.
pub const MAX_CONFIG_FILE_BYTES: u64 = 256 * 1024;

/// The settled configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    /// A streaming replica of the PostgreSQL database for searches, lists, reports and
    /// dashboards (`read_database_url`, environment or file only); `yibao serve` reads it.
    pub read_database_url: Option<DatabaseUrl>,
    /// Lag past which the replica is not read (`max_replica_lag_seconds`, 1 to 600, default 10).
    pub max_replica_lag: std::time::Duration,
    pub listen: SocketAddr,
    pub body_limit_bytes: usize,
    /// A `tracing` filter such as `info` or `yibao_server=debug,info`.
    pub log: String,
    /// Whether the database URL came from a command-line flag (then a password in it is in argv).
    pub database_url_from_flag: bool,
    /// Seals channel secrets at rest (64 hex characters). Environment or file only, never a flag.
    pub master_key: Option<yibao_server::channel::secrets::MasterKey>,
    /// How long an order holds its payables, seconds.
    pub order_hold_seconds: i64,
    /// A CJK font for receipt PDFs; default: the first Debian font found.
    pub receipt_font: Option<PathBuf>,
    /// Fonts tried, in order, for characters the receipt font lacks (rare Han: Ext A, B and
    /// later). `None`: the Debian fallback fonts that are installed; `Some(vec![])`: none.
    pub receipt_fallback_fonts: Option<Vec<PathBuf>>,
    /// Where payments are posted to the agency (到帐), and the HMAC secret that signs them.
    pub posting_url: Option<String>,
    pub posting_secret: Option<yibao_server::channel::secrets::ChannelSecret>,
    /// The SMS gateway the citizen site's text messages (sign-in codes) go to, and the HMAC
    /// secret that signs them (`sms_gateway_url`, `sms_gateway_secret`; docs/citizen.md). Without
    /// them no code can be sent and the site's sign-in says so; the demo uses its mailbox.
    pub sms_gateway_url: Option<String>,
    pub sms_gateway_secret: Option<yibao_server::channel::secrets::ChannelSecret>,
    /// Text messages go to the demo mailbox (`/demo/mailbox`): `yibao demo` only, never a key.
    pub demo_mailbox: bool,
    /// Payment reports committed together at most (group commit); 1 commits each on its own.
    pub payment_batch_max: usize,
    /// How long delivered outbox events are kept before they are pruned, days
    /// (`outbox_delivered_kept_days`, 1 to 3650, default 30). Undelivered ones are kept until
    /// delivered, however long.
    pub outbox_delivered_kept_days: i64,
    /// The absolute URL the public reaches this server at; receipts print their verification
    /// URL (and its QR code) under it. `None`: `http://` + the listen address, with a warning.
    pub public_base_url: Option<yibao_server::receipts::PublicBaseUrl>,
    /// A header set by a trusted reverse proxy with the client's address (e.g. `X-Forwarded-For`),
    /// for sign-in throttling and the audit log. `None`: the socket's peer address.
    pub client_address_header: Option<yibao_server::auth::HeaderName>,
    /// Where the staff console (`/console/`) is served.
    pub console: ConsoleServing,
    /// Mark the console's session cookie `Secure` (it is reached over HTTPS): by default when
    /// `public_base_url` is `https://`.
    pub console_secure_cookie: bool,
    /// The reasons a station may record for an unpaid resident (`unpaid_reasons`; default: the
    /// national list, `yibao_domain::unpaid::DEFAULT_UNPAID_REASONS`).
    pub unpaid_reasons: Vec<String>,
    /// Where `/metrics` is served.
    pub metrics: MetricsExposure,
    /// How log lines are written to standard error.
    pub log_format: LogFormat,
}

/// Whether, and on which listener, the staff console is served. It belongs on the agency's
/// internal network; the channel API may face the banks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleServing {
    /// On the main listener, beside the API (the default).
    WithApi,
    /// On its own listener only (the main listener then serves no console).
    Own(SocketAddr),
    /// Not at all.
    Off,
}

/// Where `/metrics` is served (`metrics_listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsExposure {
    /// On the main listener, beside the API (`main`, the default).
    MainListener,
    /// On a listener of its own (an address), e.g. reachable only from the monitoring network.
    Listener(SocketAddr),
    /// Not at all (`off`).
    Off,
}

/// How log lines are written (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    Text,
    /// One JSON object per line, for a log platform.
    Json,
}

/// The file's layout. Unknown keys are refused so a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    read_database_url: Option<String>,
    max_replica_lag_seconds: Option<u64>,
    listen: Option<String>,
    body_limit_bytes: Option<usize>,
    log: Option<String>,
    master_key: Option<String>,
    order_hold_seconds: Option<i64>,
    receipt_font: Option<PathBuf>,
    receipt_fallback_fonts: Option<Vec<PathBuf>>,
    posting_url: Option<String>,
    sms_gateway_url: Option<String>,
    sms_gateway_secret: Option<String>,
    posting_secret: Option<String>,
    payment_batch_max: Option<usize>,
    outbox_delivered_kept_days: Option<i64>,
    public_base_url: Option<String>,
    client_address_header: Option<String>,
    console: Option<bool>,
    console_listen: Option<String>,
    console_secure_cookie: Option<bool>,
    unpaid_reasons: Option<Vec<String>>,
    metrics_listen: Option<String>,
    log_format: Option<String>,
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

        let read_database_url = env("YIBAO_READ_DATABASE_URL")
            .or(file.read_database_url)
            .filter(|u| !u.trim().is_empty())
            .map(|url| {
                DatabaseUrl::parse(&url).map_err(|e| ConfigError::Invalid {
                    key: "read_database_url",
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        if let Some(read) = &read_database_url {
            if read.sqlite_file().is_some() || database_url.sqlite_file().is_some() {
                return Err(ConfigError::Invalid {
                    key: "read_database_url",
                    reason: "只读副本只用于 PostgreSQL：database_url 和 read_database_url 都应是 postgres:// 地址"
                        .into(),
                });
            }
        }
        let max_replica_lag_seconds = match env("YIBAO_MAX_REPLICA_LAG_SECONDS") {
            Some(t) => t.trim().parse().map_err(|_| ConfigError::Invalid {
                key: "max_replica_lag_seconds",
                reason: format!("“{t}”不是整数"),
            })?,
            None => file
                .max_replica_lag_seconds
                .unwrap_or(yibao_storage::read_routing::DEFAULT_MAX_REPLICA_LAG.as_secs()),
        };
        let lag_limit = yibao_storage::read_routing::MAX_REPLICA_LAG_LIMIT.as_secs();
        if !(1..=lag_limit).contains(&max_replica_lag_seconds) {
            return Err(ConfigError::Invalid {
                key: "max_replica_lag_seconds",
                reason: format!("应在 1 至 {lag_limit} 秒之间"),
            });
        }
        let max_replica_lag = std::time::Duration::from_secs(max_replica_lag_seconds);

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

        let master_key = env("YIBAO_MASTER_KEY")
            .or(file.master_key)
            .map(|k| {
                yibao_server::channel::secrets::MasterKey::from_hex(&k).map_err(|e| {
                    ConfigError::Invalid {
                        key: "master_key",
                        reason: e.to_owned(),
                    }
                })
            })
            .transpose()?;
        let order_hold_seconds = match env("YIBAO_ORDER_HOLD_SECONDS") {
            Some(t) => t.trim().parse().map_err(|_| ConfigError::Invalid {
                key: "order_hold_seconds",
                reason: format!("“{t}”不是整数"),
            })?,
            None => file
                .order_hold_seconds
                .unwrap_or(yibao_server::channel::DEFAULT_ORDER_HOLD_SECONDS),
        };
        if !(MIN_ORDER_HOLD_SECONDS..=MAX_ORDER_HOLD_SECONDS).contains(&order_hold_seconds) {
            return Err(ConfigError::Invalid {
                key: "order_hold_seconds",
                reason: format!("应在 {MIN_ORDER_HOLD_SECONDS} 至 {MAX_ORDER_HOLD_SECONDS} 秒之间"),
            });
        }
        let receipt_font = env("YIBAO_RECEIPT_FONT")
            .map(PathBuf::from)
            .or(file.receipt_font);
        let receipt_fallback_fonts = env(yibao_receipt_pdf::FALLBACK_FONTS_ENV)
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect::<Vec<_>>()
            })
            .or(file.receipt_fallback_fonts);
        if let Some(list) = &receipt_fallback_fonts {
            if list.len() > yibao_receipt_pdf::MAX_FALLBACK_FONTS {
                return Err(ConfigError::Invalid {
                    key: "receipt_fallback_fonts",
                    reason: format!(
                        "最多 {} 个字体，实有 {} 个",
                        yibao_receipt_pdf::MAX_FALLBACK_FONTS,
                        list.len()
                    ),
                });
            }
        }
        let posting_url = env("YIBAO_POSTING_URL").or(file.posting_url);
        let posting_secret = env("YIBAO_POSTING_SECRET")
            .or(file.posting_secret)
            .map(|s| {
                yibao_server::channel::secrets::ChannelSecret::new(s.into_bytes()).map_err(|e| {
                    ConfigError::Invalid {
                        key: "posting_secret",
                        reason: e.to_owned(),
                    }
                })
            })
            .transpose()?;
        if posting_url.is_some() != posting_secret.is_some() {
            return Err(ConfigError::Invalid {
                key: "posting_url",
                reason: "posting_url 和 posting_secret 须同时设置".into(),
            });
        }

        let sms_gateway_url = env("YIBAO_SMS_GATEWAY_URL").or(file.sms_gateway_url);
        let sms_gateway_secret = env("YIBAO_SMS_GATEWAY_SECRET")
            .or(file.sms_gateway_secret)
            .map(|s| {
                yibao_server::channel::secrets::ChannelSecret::new(s.into_bytes()).map_err(|e| {
                    ConfigError::Invalid {
                        key: "sms_gateway_secret",
                        reason: e.to_owned(),
                    }
                })
            })
            .transpose()?;
        if sms_gateway_url.is_some() != sms_gateway_secret.is_some() {
            return Err(ConfigError::Invalid {
                key: "sms_gateway_url",
                reason: "sms_gateway_url 和 sms_gateway_secret 须同时设置".into(),
            });
        }
        if let Some(url) = &sms_gateway_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    key: "sms_gateway_url",
                    reason: format!("“{url}”不是 http:// 或 https:// 开头的地址"),
                });
            }
        }

        let payment_batch_max = match env("YIBAO_PAYMENT_BATCH_MAX") {
            Some(t) => t.trim().parse().map_err(|_| ConfigError::Invalid {
                key: "payment_batch_max",
                reason: format!("“{t}”不是整数"),
            })?,
            None => file.payment_batch_max.unwrap_or(DEFAULT_PAYMENT_BATCH_MAX),
        };
        if !(1..=yibao_storage::collection::MAX_PAYMENT_BATCH).contains(&payment_batch_max) {
            return Err(ConfigError::Invalid {
                key: "payment_batch_max",
                reason: format!(
                    "应在 1 至 {} 之间",
                    yibao_storage::collection::MAX_PAYMENT_BATCH
                ),
            });
        }

        let outbox_delivered_kept_days = match env("YIBAO_OUTBOX_DELIVERED_KEPT_DAYS") {
            Some(t) => t.trim().parse().map_err(|_| ConfigError::Invalid {
                key: "outbox_delivered_kept_days",
                reason: format!("“{t}”不是整数"),
            })?,
            None => file
                .outbox_delivered_kept_days
                .unwrap_or(yibao_server::background::DEFAULT_DELIVERED_EVENTS_KEPT_DAYS),
        };
        if !(1..=MAX_OUTBOX_DELIVERED_KEPT_DAYS).contains(&outbox_delivered_kept_days) {
            return Err(ConfigError::Invalid {
                key: "outbox_delivered_kept_days",
                reason: format!("应在 1 至 {MAX_OUTBOX_DELIVERED_KEPT_DAYS} 天之间"),
            });
        }

        let public_base_url = env("YIBAO_PUBLIC_BASE_URL")
            .or(file.public_base_url)
            .map(|text| {
                yibao_server::receipts::PublicBaseUrl::parse(&text).map_err(|reason| {
                    ConfigError::Invalid {
                        key: "public_base_url",
                        reason,
                    }
                })
            })
            .transpose()?;

        let client_address_header = env("YIBAO_CLIENT_ADDRESS_HEADER")
            .or(file.client_address_header)
            .map(|text| {
                yibao_server::auth::HeaderName::from_bytes(text.trim().as_bytes()).map_err(|_| {
                    ConfigError::Invalid {
                        key: "client_address_header",
                        reason: format!("“{text}”不是有效的 HTTP 头名称，如 X-Forwarded-For"),
                    }
                })
            })
            .transpose()?;

        let console_on = match env("YIBAO_CONSOLE") {
            Some(text) => match text.trim() {
                "true" | "1" | "on" => true,
                "false" | "0" | "off" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "console",
                        reason: format!("“{text}”应为 true 或 false"),
                    })
                }
            },
            None => file.console.unwrap_or(true),
        };
        let console_listen = env("YIBAO_CONSOLE_LISTEN")
            .or(file.console_listen)
            .map(|text| {
                text.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| ConfigError::Invalid {
                        key: "console_listen",
                        reason: format!("“{text}”不是有效的地址，应为 IP:端口，如 10.0.0.5:8081"),
                    })
            })
            .transpose()?;
        let console = match (console_on, console_listen) {
            (false, _) => ConsoleServing::Off,
            (true, Some(address)) if address == listen => ConsoleServing::WithApi,
            (true, Some(address)) => ConsoleServing::Own(address),
            (true, None) => ConsoleServing::WithApi,
        };
        let console_secure_cookie = file.console_secure_cookie.unwrap_or_else(|| {
            public_base_url
                .as_ref()
                .is_some_and(|u| u.to_string().starts_with("https://"))
        });

        let unpaid_reasons = match file.unpaid_reasons {
            Some(reasons) => {
                yibao_domain::unpaid::check_reasons(&reasons).map_err(|reason| {
                    ConfigError::Invalid {
                        key: "unpaid_reasons",
                        reason,
                    }
                })?;
                reasons
            }
            None => yibao_domain::unpaid::DEFAULT_UNPAID_REASONS
                .iter()
                .map(|r| (*r).to_owned())
                .collect(),
        };

        let metrics = match env("YIBAO_METRICS_LISTEN")
            .or(file.metrics_listen)
            .as_deref()
            .map(str::trim)
        {
            None | Some("main") => MetricsExposure::MainListener,
            Some("off") => MetricsExposure::Off,
            Some(address) => {
                let address: SocketAddr = address.parse().map_err(|_| ConfigError::Invalid {
                    key: "metrics_listen",
                    reason: format!("“{address}”应为 main、off 或 IP:端口，如 127.0.0.1:9464"),
                })?;
                if address == listen {
                    return Err(ConfigError::Invalid {
                        key: "metrics_listen",
                        reason: "与 listen 相同；要在主端口提供指标请写 main".into(),
                    });
                }
                MetricsExposure::Listener(address)
            }
        };
        let log_format = match env("YIBAO_LOG_FORMAT")
            .or(file.log_format)
            .as_deref()
            .map(str::trim)
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "log_format",
                    reason: format!("“{other}”应为 text 或 json"),
                })
            }
        };

        Ok(Config {
            console,
            console_secure_cookie,
            unpaid_reasons,
            metrics,
            log_format,
            payment_batch_max,
            outbox_delivered_kept_days,
            public_base_url,
            client_address_header,
            database_url,
            read_database_url,
            max_replica_lag,
            listen,
            body_limit_bytes,
            log,
            database_url_from_flag,
            master_key,
            order_hold_seconds,
            receipt_font,
            receipt_fallback_fonts,
            posting_url,
            sms_gateway_url,
            sms_gateway_secret,
            demo_mailbox: false,
            posting_secret,
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
    fn unpaid_reasons_default_to_the_national_list_and_a_bad_list_is_refused() {
        let c = Config::load(&Flags::default(), &env_of(&[])).unwrap();
        assert_eq!(
            c.unpaid_reasons,
            yibao_domain::unpaid::DEFAULT_UNPAID_REASONS
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yibao.toml");
        std::fs::write(
            &path,
            "unpaid_reasons = [\"外出务工\", \"参军\", \"其他\"]\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(path.clone()),
            ..Flags::default()
        };
        let c = Config::load(&flags, &env_of(&[])).unwrap();
        assert_eq!(c.unpaid_reasons, ["外出务工", "参军", "其他"]);
        std::fs::write(&path, "unpaid_reasons = [\"参军\", \"参军\"]\n").unwrap();
        match Config::load(&flags, &env_of(&[])) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "unpaid_reasons"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_read_replica_is_postgres_beside_postgres_and_its_lag_bound_is_bounded() {
        let c = Config::load(&Flags::default(), &env_of(&[])).unwrap();
        assert!(c.read_database_url.is_none());
        assert_eq!(c.max_replica_lag, std::time::Duration::from_secs(10));
        let c = Config::load(
            &Flags::default(),
            &env_of(&[
                ("YIBAO_DATABASE_URL", "postgres://yibao@10.0.0.5/yibao"),
                (
                    "YIBAO_READ_DATABASE_URL",
                    "postgres://yibao:pw@10.0.0.6/yibao",
                ),
                ("YIBAO_MAX_REPLICA_LAG_SECONDS", "30"),
            ]),
        )
        .unwrap();
        let read = c.read_database_url.clone().expect("replica");
        assert_eq!(read.expose(), "postgres://yibao:pw@10.0.0.6/yibao");
        assert!(
            !format!("{read} {c:?}").contains("pw"),
            "the password is hidden"
        );
        assert_eq!(c.max_replica_lag, std::time::Duration::from_secs(30));
        for pairs in [
            // A replica beside the embedded database.
            vec![("YIBAO_READ_DATABASE_URL", "postgres://yibao@10.0.0.6/yibao")],
            vec![
                ("YIBAO_DATABASE_URL", "postgres://yibao@10.0.0.5/yibao"),
                ("YIBAO_READ_DATABASE_URL", "sqlite://copy.db"),
            ],
            vec![
                ("YIBAO_DATABASE_URL", "postgres://yibao@10.0.0.5/yibao"),
                ("YIBAO_READ_DATABASE_URL", "mysql://yibao@10.0.0.6/yibao"),
            ],
        ] {
            let err = Config::load(&Flags::default(), &env_of(&pairs)).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        key: "read_database_url",
                        ..
                    }
                ),
                "{pairs:?}: {err}"
            );
            assert!(err.to_string().contains("read_database_url"));
        }
        for lag in ["0", "601", "ten"] {
            let err = Config::load(
                &Flags::default(),
                &env_of(&[("YIBAO_MAX_REPLICA_LAG_SECONDS", lag)]),
            )
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        key: "max_replica_lag_seconds",
                        ..
                    }
                ),
                "{lag}: {err}"
            );
        }
    }

    #[test]
    fn metrics_listener_and_log_format() {
        let c = Config::load(&Flags::default(), &env_of(&[])).unwrap();
        assert_eq!(c.metrics, MetricsExposure::MainListener);
        assert_eq!(c.log_format, LogFormat::Text);
        let c = Config::load(
            &Flags::default(),
            &env_of(&[
                ("YIBAO_METRICS_LISTEN", "127.0.0.1:9464"),
                ("YIBAO_LOG_FORMAT", "json"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.metrics,
            MetricsExposure::Listener("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(c.log_format, LogFormat::Json);
        let off = Config::load(
            &Flags::default(),
            &env_of(&[("YIBAO_METRICS_LISTEN", "off")]),
        );
        assert_eq!(off.unwrap().metrics, MetricsExposure::Off);
        for (key, value, field) in [
            ("YIBAO_METRICS_LISTEN", "9464", "metrics_listen"),
            ("YIBAO_METRICS_LISTEN", DEFAULT_LISTEN, "metrics_listen"),
            ("YIBAO_LOG_FORMAT", "xml", "log_format"),
        ] {
            let err = Config::load(&Flags::default(), &env_of(&[(key, value)])).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { key, .. } if key == field),
                "{value}: {err}"
            );
        }
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
    fn debug_hides_the_password_and_keys() {
        let key = "ab".repeat(32);
        let env = env_of(&[
            ("YIBAO_DATABASE_URL", "postgres://yibao:hunter2@db/yibao"),
            ("YIBAO_MASTER_KEY", key.as_str()),
            ("YIBAO_POSTING_URL", "http://127.0.0.1:9/post"),
            ("YIBAO_POSTING_SECRET", "posting-secret-0123456789"),
        ]);
        let c = Config::load(&Flags::default(), &env).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains(&key));
        assert!(!shown.contains("posting-secret"));
        assert!(c.master_key.is_some());
    }

    #[test]
    fn the_sms_gateway_needs_its_url_and_secret_together_and_an_http_url() {
        let c = Config::load(&Flags::default(), &env_of(&[])).unwrap();
        assert!(c.sms_gateway_url.is_none() && !c.demo_mailbox);
        let both = env_of(&[
            ("YIBAO_SMS_GATEWAY_URL", "https://sms.example.gov.cn/send"),
            ("YIBAO_SMS_GATEWAY_SECRET", "sms-secret-value"),
        ]);
        let c = Config::load(&Flags::default(), &both).unwrap();
        assert_eq!(
            c.sms_gateway_url.as_deref(),
            Some("https://sms.example.gov.cn/send")
        );
        assert!(!format!("{c:?}").contains("sms-secret-value"));
        let url_only = env_of(&[("YIBAO_SMS_GATEWAY_URL", "https://sms.example.gov.cn/send")]);
        let err = Config::load(&Flags::default(), &url_only).unwrap_err();
        assert!(
            err.to_string().contains("sms_gateway_secret 须同时设置"),
            "{err}"
        );
        let not_http = env_of(&[
            ("YIBAO_SMS_GATEWAY_URL", "sms.example.gov.cn"),
            ("YIBAO_SMS_GATEWAY_SECRET", "sms-secret-value"),
        ]);
        let err = Config::load(&Flags::default(), &not_http).unwrap_err();
        assert!(
            err.to_string().starts_with("配置项 sms_gateway_url 无效："),
            "{err}"
        );
    }

    #[test]
    fn public_base_url_must_be_absolute() {
        let env = env_of(&[("YIBAO_PUBLIC_BASE_URL", "https://yibao.example.gov.cn/")]);
        let c = Config::load(&Flags::default(), &env).unwrap();
        assert_eq!(
            c.public_base_url.unwrap().as_str(),
            "https://yibao.example.gov.cn"
        );
        assert!(Config::load(&Flags::default(), &env_of(&[]))
            .unwrap()
            .public_base_url
            .is_none());
        for bad in [
            "/public",
            "yibao.example.gov.cn",
            "https://",
            "https://h?x=1",
        ] {
            let env = env_of(&[("YIBAO_PUBLIC_BASE_URL", bad)]);
            let err = Config::load(&Flags::default(), &env).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("配置项 public_base_url 无效："),
                "{bad}: {text}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yibao.toml");
        std::fs::write(&path, "public_base_url = \"receipts/verify\"\n").unwrap();
        let flags = Flags {
            config: Some(path),
            ..Flags::default()
        };
        let err = Config::load(&flags, &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("http:// 或 https://"), "{err}");
    }

    #[test]
    fn client_address_header_is_a_header_name() {
        let env = env_of(&[("YIBAO_CLIENT_ADDRESS_HEADER", "X-Forwarded-For")]);
        let c = Config::load(&Flags::default(), &env).unwrap();
        assert_eq!(c.client_address_header.unwrap().as_str(), "x-forwarded-for");
        let env = env_of(&[("YIBAO_CLIENT_ADDRESS_HEADER", "bad header")]);
        let err = Config::load(&Flags::default(), &env).unwrap_err();
        assert!(err.to_string().contains("client_address_header"), "{err}");
    }

    #[test]
    fn delivered_outbox_events_are_kept_30_days_unless_configured_within_bounds() {
        let c = Config::load(&Flags::default(), &env_of(&[])).unwrap();
        assert_eq!(c.outbox_delivered_kept_days, 30);
        let env = env_of(&[("YIBAO_OUTBOX_DELIVERED_KEPT_DAYS", "90")]);
        assert_eq!(
            Config::load(&Flags::default(), &env)
                .unwrap()
                .outbox_delivered_kept_days,
            90
        );
        for bad in ["0", "-1", "3651", "forever"] {
            let env = env_of(&[("YIBAO_OUTBOX_DELIVERED_KEPT_DAYS", bad)]);
            let err = Config::load(&Flags::default(), &env).unwrap_err();
            assert!(
                err.to_string().contains("outbox_delivered_kept_days"),
                "{err}"
            );
        }
    }

    #[test]
    fn hold_time_is_bounded() {
        let env = env_of(&[("YIBAO_ORDER_HOLD_SECONDS", "5")]);
        assert!(Config::load(&Flags::default(), &env).is_err());
        let env = env_of(&[("YIBAO_ORDER_HOLD_SECONDS", "600")]);
        assert_eq!(
            Config::load(&Flags::default(), &env)
                .unwrap()
                .order_hold_seconds,
            600
        );
        let env = env_of(&[("YIBAO_POSTING_URL", "http://x")]);
        assert!(
            Config::load(&Flags::default(), &env).is_err(),
            "url without secret"
        );
    }

    /// A config file of the previous version (only `receipt_font`) still loads: the fallbacks
    /// default to the installed Debian ones. The new key takes a list; too long a list is refused.
    #[test]
    fn receipt_fonts_old_key_still_works_and_fallbacks_are_a_bounded_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yibao.toml");
        std::fs::write(&path, "receipt_font = \"/fonts/main.ttc\"\n").unwrap();
        let flags = Flags {
            config: Some(path.clone()),
            ..Flags::default()
        };
        let c = Config::load(&flags, &env_of(&[])).unwrap();
        assert_eq!(c.receipt_font, Some(PathBuf::from("/fonts/main.ttc")));
        assert_eq!(c.receipt_fallback_fonts, None);

        std::fs::write(
            &path,
            "receipt_font = \"/fonts/main.ttc\"\nreceipt_fallback_fonts = [\"/fonts/a.ttf\", \"/fonts/b.ttf\"]\n",
        )
        .unwrap();
        let c = Config::load(&flags, &env_of(&[])).unwrap();
        assert_eq!(
            c.receipt_fallback_fonts,
            Some(vec![
                PathBuf::from("/fonts/a.ttf"),
                PathBuf::from("/fonts/b.ttf")
            ])
        );
        let env = env_of(&[("YIBAO_RECEIPT_FALLBACK_FONTS", "/x/c.ttf:/x/d.ttf")]);
        let c = Config::load(&flags, &env).unwrap();
        assert_eq!(
            c.receipt_fallback_fonts,
            Some(vec![PathBuf::from("/x/c.ttf"), PathBuf::from("/x/d.ttf")])
        );
        let env = env_of(&[("YIBAO_RECEIPT_FALLBACK_FONTS", "")]);
        let c = Config::load(&flags, &env).unwrap();
        assert_eq!(
            c.receipt_fallback_fonts,
            Some(vec![]),
            "empty: no fallbacks"
        );

        let many = ["/f.ttf"; yibao_receipt_pdf::MAX_FALLBACK_FONTS + 1].join(":");
        let env = env_of(&[("YIBAO_RECEIPT_FALLBACK_FONTS", many.as_str())]);
        let err = Config::load(&flags, &env).unwrap_err();
        assert!(err.to_string().contains("receipt_fallback_fonts"), "{err}");
    }
}
