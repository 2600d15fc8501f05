//! What a connection is, below the server loop and the handlers: its byte stream
//! ([`Transport`]: TCP or TLS), the security of the listener it came in on
//! ([`ListenerSecurity`], whose TLS set-up is swapped when its stores change), and who is at the
//! other end ([`Session`]).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::security::sasl::SaslConfig;
use crate::security::SecurityProtocol;

/// A connection's byte stream: plain TCP or TLS over it.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// The socket itself when what is written to it reaches the peer unchanged, so that file
    /// bytes can go with sendfile(2); `None` under TLS, which must encrypt them.
    fn raw_socket(&self) -> Option<&TcpStream>;
}

impl Transport for TcpStream {
    fn raw_socket(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn raw_socket(&self) -> Option<&TcpStream> {
        None
    }
}

/// The listener a connection came in on, and how it is secured.
pub struct ListenerSecurity {
    pub name: String,
    pub protocol: SecurityProtocol,
    /// The TLS configuration of an SSL listener. Behind a lock so that a new key store (from
    /// AlterConfigs) takes effect for new connections.
    pub tls: Option<std::sync::RwLock<Arc<crate::security::tls::ListenerTls>>>,
    /// The SASL set-up of a SASL_PLAINTEXT or SASL_SSL listener.
    pub sasl: Option<Arc<SaslConfig>>,
    /// The listener's own `ssl.*` settings the TLS set-up was built from.
    tls_keys: std::sync::Mutex<crate::config::Properties>,
}

impl ListenerSecurity {
    /// The security of broker listener `l` as configured at start.
    pub fn new(config: &crate::config::BrokerConfig, l: &crate::config::BrokerListener) -> Self {
        ListenerSecurity {
            name: l.bind.name.clone(),
            protocol: l.protocol,
            tls: l.tls.clone().map(std::sync::RwLock::new),
            sasl: l.sasl.clone(),
            tls_keys: std::sync::Mutex::new(listener_ssl_keys(&config.properties, &l.bind.name)),
        }
    }

    /// Rebuilds the TLS set-up when this listener's `listener.name.<l>.ssl.*` settings changed
    /// (AlterConfigs validated them before committing). Connections already open keep theirs.
    pub fn reload_tls(&self, config: &crate::config::BrokerConfig) {
        if self.tls.is_none()
            || *crate::locks::lock(&self.tls_keys)
                == listener_ssl_keys(&config.properties, &self.name)
        {
            return;
        }
        match crate::security::tls::listener_tls(&config.properties, &self.name) {
            Ok(new) => self.install_tls(config, new),
            Err(e) => tracing::error!(listener = self.name, "TLS settings not applied: {e:#}"),
        }
    }

    /// Puts `new`, built from `config`, in force for new connections (AlterConfigs, which
    /// built it to validate the change, installs it even when the settings are the same: a
    /// store file replaced in place and its settings sent again).
    pub fn install_tls(
        &self,
        config: &crate::config::BrokerConfig,
        new: crate::security::tls::ListenerTls,
    ) {
        let Some(tls) = &self.tls else {
            return;
        };
        let mut current = crate::locks::lock(&self.tls_keys);
        *tls.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        *current = listener_ssl_keys(&config.properties, &self.name);
        tracing::info!(
            listener = self.name,
            "new TLS settings in force for new connections"
        );
    }

    /// The TLS set-up in force, for a TLS listener.
    pub fn current_tls(&self) -> Option<Arc<crate::security::tls::ListenerTls>> {
        self.tls
            .as_ref()
            .map(|t| t.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// The `listener.name.<listener>.ssl.*` settings of a listener.
fn listener_ssl_keys(
    properties: &crate::config::Properties,
    listener: &str,
) -> crate::config::Properties {
    let prefix = format!("listener.name.{}.ssl.", listener.to_ascii_lowercase());
    properties
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Who is at the other end of a connection, once its security layer is through.
#[derive(Debug, Clone)]
pub struct Session {
    /// `User:<name>`; [`principal::ANONYMOUS`] when not authenticated.
    pub principal: Arc<str>,
    pub listener: Arc<str>,
}
