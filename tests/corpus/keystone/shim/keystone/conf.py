"""keystone.conf.CONF as the initial revision reads it: only [saml] relay_state_prefix, at its default."""

from types import SimpleNamespace

CONF = SimpleNamespace(saml=SimpleNamespace(relay_state_prefix='ss:mem:'))
