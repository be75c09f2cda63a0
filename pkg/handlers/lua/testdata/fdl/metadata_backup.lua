-- metadata_backup.lua: hands the backup agent's settings to every server
-- that boots, in its XML metadata under CONFIG/meta/server/system.
-- p.input[1] is the server, p.input[2] the metadata document.

local xml = new("FDLXMLHelper")

function register()
  return { "metadata_backup" }
end

function metadata_backup(p)
  if (p == nil) then
    return {
      ref = "metadata_backup",
      name = "Backup agent metadata",
      description = "Adds the backup agent settings to the server metadata",
      priority = -8000,
      triggerType = "PRE_SERVER_METADATA_UPDATE",
      triggerOptions = { "ANY" },
      api = "TRIGGER",
      version = 1,
    }
  end

  local server = p.input[1]
  local doc, err = xml:parse(p.input[2])
  if doc == nil then
    print("metadata of " .. server:getResourceUUID() .. " is not XML: " .. err)
    return { exitState = "CONTINUE" }
  end

  local system = xml:findNode(doc, "CONFIG/meta/server/system")
  if system == nil then
    return { exitState = "CONTINUE" }
  end
  local backup = xml:addNode(system, "backup")
  backup:setAttribute("enabled", "true")
  xml:addTextNode(backup, "server", server:getResourceUUID())
  xml:addTextNode(backup, "token", new("FDLHashHelper"):sha256(server:getResourceUUID() .. "/" .. server:getCustomerUUID()))

  p.input[2] = xml:toString(doc)
  return { exitState = "CONTINUE" }
end
