-- metadata.lua: marks the boot metadata of every server as managed.
--
-- For PRE_SERVER_METADATA_UPDATE, p.input is {server, metadata}: p.input[1]
-- is the server and p.input[2] its metadata document. FCO's document is XML;
-- on triggerbus's wire it may be a JSON object, and then this function adds
--
--   "triggerbus": {"managed": true, "server": "<server uuid>", "updated": <ms>}
--
-- to it. The changed input goes back to the orchestrator in the PRE reply.
-- An XML document (a string) is left as it is.

function register()
  return { "metadata_managed" }
end

function metadata_managed(p)
  if p == nil then
    return {
      ref = "metadata_managed",
      name = "Managed metadata",
      description = "Adds a triggerbus key to JSON server metadata",
      priority = -8000,
      triggerType = "PRE_SERVER_METADATA_UPDATE",
      triggerOptions = { "ANY" },
      api = "TRIGGER",
      version = 1,
    }
  end

  if type(p.input) ~= "table" then
    return { exitState = "CONTINUE" }
  end
  local server, metadata = p.input[1], p.input[2]
  if type(metadata) ~= "table" then
    return { exitState = "CONTINUE" }
  end
  metadata.triggerbus = {
    managed = true,
    server = type(server) == "table" and server.resourceUUID or nil,
    updated = p.timeStamp,
  }
  return { exitState = "SUCCESS" }
end
