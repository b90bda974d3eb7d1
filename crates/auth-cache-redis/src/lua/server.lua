-- The `run_id` of the server this runs on (nil when INFO does not tell). KEYS[1], a key of
-- the revocation list, only routes the call: on a cluster to the master of that slot, by
-- way of a MOVED redirection when the client's slot map is stale (a command without keys,
-- such as INFO itself, would be answered by whichever node the stale map names).
return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
