-- The session layout, mirrored from session_core::redis::layout (a test keeps the two in
-- step; read that module's docs for the whole layout). KEYS[1] is always the one session key
-- a script touches, so each script is atomic on one shard and legal in Redis Cluster.
--   record        layout version, state, then for a live session struct META_FORMAT's
--                 version, size, created, last access, idle, deadline (0: none), principal
--                 length, and the principal's bytes; for a forward the successor's handle
--   packed        a string: the record, then per attribute struct ENTRY_FORMAT's name and
--                 stored value (its version, 8 bytes little-endian, then its value)
--   hashed        a hash: field '' the record, field <name> an attribute's stored value
local key = KEYS[1]
local LAYOUT = 1
local META = ''
local LIVE, DELETED, MOVED = 76, 68, 77
local VERSION_BYTES = 8
local LIVE_FIXED = 52
local LAST_ACCESS_AT = 26
local META_FORMAT = '<BBI8I8I8I8I8I8I2'
local ENTRY_FORMAT = '<I2c0I4c0'
local PACKED_MAX = 4096
local REPACK_MAX = 2048
local MAX_COUNTER = 9007199254740991
