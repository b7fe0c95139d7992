{#- The optional column of existing segments (var label_column), found ignoring case;
    NULL for every row when the export has none. -#}
{%- set label = namespace(column=none) -%}
{%- if execute -%}
    {%- for column in adapter.get_columns_in_relation(source('raw', 'customers')) -%}
        {%- if column.name | lower == var('label_column') | lower -%}
            {%- set label.column = column.name -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif -%}

with

source as (

    select * from {{ source('raw', 'customers') }}

),

renamed as (

    select
        source_row_number,

        -- identifier and categories: cleaned text; category keys are lower-cased
        {{ clean_text('"ID"') }} as customer_id,
        {{ category_key('"Gender"') }} as gender_key,
        {{ category_key('"Profession"') }} as profession_key,
        {{ category_key('"Spending_Score"') }} as spending_score_key,
        {{ category_key('"Var_1"') }} as var_1_key,

        -- booleans and numbers, typed; NULL when missing or unparseable
        {{ parse_boolean('"Ever_Married"') }} as ever_married,
        {{ parse_boolean('"Graduated"') }} as graduated,
        {{ parse_number('"Age"') }} as age,
        {{ parse_number('"Work_Experience"') }} as work_experience,
        {{ parse_number('"Family_Size"') }} as family_size,

        -- the cleaned text of typed columns, so that "missing" and "unparseable" differ
        {{ clean_text('"Ever_Married"') }} as ever_married_text,
        {{ clean_text('"Graduated"') }} as graduated_text,
        {{ clean_text('"Age"') }} as age_text,
        {{ clean_text('"Work_Experience"') }} as work_experience_text,
        {{ clean_text('"Family_Size"') }} as family_size_text,

        -- an existing segmentation, if the export carries one (never a clustering feature)
        {% if label.column %}{{ clean_text(adapter.quote(label.column)) }}{% else %}null::varchar{% endif %}
            as known_segment,

        -- the row exactly as exported, kept for the quarantine report
        "ID" as source_id,
        "Gender" as source_gender,
        "Ever_Married" as source_ever_married,
        "Age" as source_age,
        "Graduated" as source_graduated,
        "Profession" as source_profession,
        "Work_Experience" as source_work_experience,
        "Spending_Score" as source_spending_score,
        "Family_Size" as source_family_size,
        "Var_1" as source_var_1

    from source

)

select * from renamed
