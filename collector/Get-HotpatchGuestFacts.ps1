<#
.SYNOPSIS
    Reads the hotpatch guest facts of this Windows Server (VBS, Windows Update policy, Hyper-V / WSL 2,
    firmware) and writes them in the format hotpatch-audit imports (docs/guest-facts.md).

.DESCRIPTION
    NOT RUN IN THIS PROJECT'S CI: it needs Windows Server (CIM, the registry, Get-WindowsFeature), and the
    project's CI has no Windows. Its output format is pinned instead by the sample outputs checked into
    tests/fixtures/guest_facts (collector-sample.csv / .json / .ndjson / -phrases.txt), which
    tests/test_guest_facts.py loads through the importer and the Machine Configuration phrase parser.
    Keep both in step when the format changes.

    Facts read:
      Win32_DeviceGuard (root\Microsoft\Windows\DeviceGuard): VirtualizationBasedSecurityStatus,
          SecurityServicesConfigured, SecurityServicesRunning
      HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate: WUServer,
          SetPolicyDrivenUpdateSourceForQualityUpdates, DoNotConnectToWindowsUpdateInternetLocations
      HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU: UseWUServer
      Get-WindowsFeature Hyper-V (HyperVRole), Get-WindowsOptionalFeature Microsoft-Windows-Subsystem-Linux
          and VirtualMachinePlatform (Wsl2 = both enabled)
      Confirm-SecureBootUEFI (SecureBoot), $env:firmware_type or Get-ComputerInfo BiosFirmwareType (FirmwareType)
      Win32_ComputerSystem model / HKLM:\SOFTWARE\Microsoft\Virtual Machine\Guest\Parameters and
          Win32_BIOS (IsVirtualMachine; HyperVGeneration 2 = UEFI Hyper-V guest, 1 = BIOS Hyper-V guest)
    The machine's ARM id comes from the Arc agent (azcmagent show -j -> resourceId) or -MachineId
    (required on Azure VMs without the Arc agent).

    A fact that cannot be read is written empty (unknown), never guessed: the audits treat it as missing.

.PARAMETER MachineId
    ARM resource id of this machine (…/Microsoft.HybridCompute/machines/NAME or
    …/Microsoft.Compute/virtualMachines/NAME). Default: resourceId from `azcmagent show -j`.
.PARAMETER Format
    Csv (default), Json (array of objects) or Ndjson (one object per line).
.PARAMETER Phrases
    Write the key=value phrase lines of docs/guest-facts.md instead (one line per Machine
    Configuration resource: "DeviceGuard: k=v k=v"), as the Machine Configuration package reports them.
.PARAMETER Path
    Write to this file (UTF-8). CSV: rows are appended when the file exists, so many servers can
    write to one share; the header is written once. Default: standard output.

.EXAMPLE
    .\Get-HotpatchGuestFacts.ps1 -Path \\fileserver\inventory\guest-facts.csv
.EXAMPLE
    .\Get-HotpatchGuestFacts.ps1 -Format Json -MachineId '/subscriptions/…/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1'
.EXAMPLE
    .\Get-HotpatchGuestFacts.ps1 -Phrases
#>
[CmdletBinding()]
param(
    [string] $MachineId,
    [ValidateSet('Csv', 'Json', 'Ndjson')] [string] $Format = 'Csv',
    [switch] $Phrases,
    [string] $Path
)

Set-StrictMode -Version 3
$ErrorActionPreference = 'Stop'

# Column order of the import format (hotpatch_audit.guest_facts.COLUMNS).
$Columns = @(
    'machine_id', 'collected_at',
    'VirtualizationBasedSecurityStatus', 'SecurityServicesConfigured', 'SecurityServicesRunning',
    'UseWUServer', 'WUServer', 'SetPolicyDrivenUpdateSourceForQualityUpdates',
    'DoNotConnectToWindowsUpdateInternetLocations',
    'IsVirtualMachine', 'HyperVGeneration', 'HyperVRole', 'Wsl2',
    'FirmwareType', 'SecureBoot'
)
# Phrase lines: Machine Configuration resource -> its keys (docs/guest-facts.md).
$Resources = [ordered]@{
    DeviceGuard         = @('VirtualizationBasedSecurityStatus', 'SecurityServicesConfigured', 'SecurityServicesRunning')
    WindowsUpdatePolicy = @('UseWUServer', 'WUServer', 'SetPolicyDrivenUpdateSourceForQualityUpdates',
                            'DoNotConnectToWindowsUpdateInternetLocations')
    Virtualization      = @('IsVirtualMachine', 'HyperVGeneration', 'HyperVRole', 'Wsl2')
    Firmware            = @('FirmwareType', 'SecureBoot')
}

function Get-PolicyValue([string] $Key, [string] $Name) {
    # '' when the policy is not set
    try {
        $item = Get-ItemProperty -Path $Key -Name $Name -ErrorAction Stop
        return [string] $item.$Name
    } catch {
        return ''
    }
}

function Get-MachineResourceId {
    if ($MachineId) { return $MachineId }
    $agent = Join-Path $env:ProgramFiles 'AzureConnectedMachineAgent\azcmagent.exe'
    $cmd = if (Test-Path $agent) { $agent } else { (Get-Command azcmagent -ErrorAction SilentlyContinue).Source }
    if (-not $cmd) {
        throw 'No Azure Arc agent (azcmagent) on this machine: pass -MachineId with the ARM resource id of the VM.'
    }
    $show = & $cmd show -j | Out-String | ConvertFrom-Json
    if (-not $show.resourceId) {
        throw 'azcmagent show -j returned no resourceId (is the agent connected?): pass -MachineId.'
    }
    return [string] $show.resourceId
}

function Get-GuestFacts {
    $facts = [ordered]@{}
    foreach ($c in $Columns) { $facts[$c] = '' }
    $facts.machine_id = Get-MachineResourceId
    $facts.collected_at = [DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")

    # VBS and security services
    try {
        $dg = Get-CimInstance -Namespace 'root\Microsoft\Windows\DeviceGuard' -ClassName Win32_DeviceGuard
        $facts.VirtualizationBasedSecurityStatus = [string] $dg.VirtualizationBasedSecurityStatus
        $facts.SecurityServicesConfigured = (@($dg.SecurityServicesConfigured) | Where-Object { $_ -ne 0 }) -join ','
        $facts.SecurityServicesRunning = (@($dg.SecurityServicesRunning) | Where-Object { $_ -ne 0 }) -join ','
    } catch {
        Write-Warning "Win32_DeviceGuard unavailable: VBS facts left empty ($($_.Exception.Message))"
    }

    # Windows Update policy
    $wu = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate'
    $facts.UseWUServer = Get-PolicyValue "$wu\AU" 'UseWUServer'
    $facts.WUServer = Get-PolicyValue $wu 'WUServer'
    $facts.SetPolicyDrivenUpdateSourceForQualityUpdates = Get-PolicyValue $wu 'SetPolicyDrivenUpdateSourceForQualityUpdates'
    $facts.DoNotConnectToWindowsUpdateInternetLocations = Get-PolicyValue $wu 'DoNotConnectToWindowsUpdateInternetLocations'
    if ($facts.UseWUServer -eq '') { $facts.UseWUServer = '0' }
    if ($facts.DoNotConnectToWindowsUpdateInternetLocations -eq '') { $facts.DoNotConnectToWindowsUpdateInternetLocations = '0' }

    # Firmware
    $firmware = $env:firmware_type
    if (-not $firmware) {
        try { $firmware = [string] (Get-ComputerInfo -Property BiosFirmwareType).BiosFirmwareType } catch { $firmware = '' }
    }
    switch -Regex ($firmware) {
        '^(UEFI|Uefi)$' { $facts.FirmwareType = 'UEFI' }
        '^(BIOS|Bios|Legacy)$' { $facts.FirmwareType = 'BIOS' }
        default { $facts.FirmwareType = '' }
    }
    try {
        $facts.SecureBoot = if (Confirm-SecureBootUEFI) { '1' } else { '0' }
    } catch [System.PlatformNotSupportedException] {
        $facts.SecureBoot = '0'   # BIOS firmware: Secure Boot cannot be on
    } catch {
        $facts.SecureBoot = ''    # not readable (e.g. not elevated): unknown
    }

    # Virtualization: is this machine itself a Hyper-V guest, and which generation
    $cs = Get-CimInstance -ClassName Win32_ComputerSystem
    $isVm = [bool] ($cs.Model -match 'Virtual|VMware|KVM|HVM domU|QEMU')
    $facts.IsVirtualMachine = if ($isVm) { '1' } else { '0' }
    if ($isVm -and $cs.Manufacturer -match 'Microsoft Corporation' -and $cs.Model -match 'Virtual Machine') {
        $facts.HyperVGeneration = if ($facts.FirmwareType -eq 'UEFI') { '2' } elseif ($facts.FirmwareType -eq 'BIOS') { '1' } else { '' }
    }

    # Hyper-V role and WSL 2 (both optional features must be enabled)
    try {
        $facts.HyperVRole = if ((Get-WindowsFeature -Name Hyper-V).Installed) { '1' } else { '0' }
    } catch {
        $facts.HyperVRole = ''
    }
    try {
        $wsl = Get-WindowsOptionalFeature -Online -FeatureName Microsoft-Windows-Subsystem-Linux
        $vmp = Get-WindowsOptionalFeature -Online -FeatureName VirtualMachinePlatform
        $facts.Wsl2 = if ($wsl.State -eq 'Enabled' -and $vmp.State -eq 'Enabled') { '1' } else { '0' }
    } catch {
        $facts.Wsl2 = ''
    }
    return $facts
}

function ConvertTo-JsonObject($facts) {
    # numbers as numbers, unknown as "" (the importer accepts both); lists stay comma text
    $o = [ordered]@{}
    foreach ($c in $Columns) {
        $v = $facts[$c]
        if ($c -notin @('machine_id', 'collected_at', 'WUServer', 'FirmwareType', 'SecurityServicesConfigured',
                        'SecurityServicesRunning', 'SetPolicyDrivenUpdateSourceForQualityUpdates', 'HyperVGeneration') -and $v -match '^\d+$') {
            $o[$c] = [int] $v
        } else {
            $o[$c] = $v
        }
    }
    return $o
}

$facts = Get-GuestFacts

if ($Phrases) {
    $text = foreach ($r in $Resources.Keys) {
        "${r}: " + (($Resources[$r] | ForEach-Object { "$_=$($facts[$_])" }) -join ' ')
    }
} elseif ($Format -eq 'Csv') {
    $row = [pscustomobject] $facts
    $lines = @($row | ConvertTo-Csv -NoTypeInformation)
    if ($Path -and (Test-Path $Path)) { $lines = $lines | Select-Object -Skip 1 }   # header once
    $text = $lines
} elseif ($Format -eq 'Json') {
    $text = ConvertTo-Json -InputObject @([pscustomobject] (ConvertTo-JsonObject $facts)) -Depth 3
} else {
    $text = [pscustomobject] (ConvertTo-JsonObject $facts) | ConvertTo-Json -Compress -Depth 3
}

if ($Path) {
    $append = $Format -in @('Csv', 'Ndjson') -and -not $Phrases -and (Test-Path $Path)
    $bytes = [System.Text.UTF8Encoding]::new($false)
    $content = ($text -join "`r`n") + "`r`n"
    if ($append) { [System.IO.File]::AppendAllText($Path, $content, $bytes) }
    else { [System.IO.File]::WriteAllText($Path, $content, $bytes) }
} else {
    $text
}
