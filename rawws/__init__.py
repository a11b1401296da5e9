"""rawws: WebSockets (RFC 6455, RFC 7692) in pure Python on asyncio. No dependencies."""

__version__ = "0.1.0"
